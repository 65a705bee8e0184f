/**
 * Agent status for operators and provisioning: status.json (atomic rewrite every 60 s), readiness of
 * redirector, key and listener, the `/provision` answer the data plane serves, and the client
 * behind `gpa --status [--wait N]`.
 */

export {
  AUDIT_LOG_NAME,
  type AuditFilter,
  type AuditRecord,
  auditLogFiles,
  followFile,
  formatAuditRecord,
  matchesAudit,
  parseAuditLines,
  readAuditRecords,
  safeText,
} from './audit-log.js';
export { type DemoRequest, demoHostSettings, demoRequests, printTryIt } from './demo-script.js';
export {
  type CheckResult,
  checkBpfAttached,
  checkClockSkew,
  checkConfig,
  checkKeyFolder,
  checkLoopbackOnly,
  checkPins,
  httpGet,
  type Level,
  listeningAddresses,
} from './doctor-checks.js';
export { type LearnResult, learnRules, type RuleItem } from './learn.js';
export {
  keyLatchMessage,
  listenerModuleStatus,
  policyEnforcementNote,
  type RedirectorStatusLike,
  redirectorModuleStatus,
} from './messages.js';
export { DEFAULT_CONFIG_PATH, OPERATOR_DEFAULTS, type OperatorConfig, readOperatorConfig } from './operator-config.js';
export {
  type ProvisionQueryOptions,
  type ProvisionQueryResult,
  provisionExitCode,
  queryProvision,
} from './provision-client.js';
export {
  answerProvision,
  NOTIFY_HEADER,
  PROVISION_PATH,
  type ProvisionAnswer,
  type ProvisionState,
  parseTimeTick,
  TIME_TICK_HEADER,
} from './provision-http.js';
export { nowNs, type ProvisionComponent, ProvisioningTracker, type ProvisionSnapshot } from './provisioning.js';
export {
  createCgroup,
  createSealedNetns,
  DEMO_STATE_FILE,
  type DemoSandbox,
  deleteNetns,
  destroyCgroup,
  inNetns,
  readDemoState,
  removeDemoState,
  sandboxArgv,
  writeDemoState,
} from './sandbox.js';
export {
  buildStatusDocument,
  type ConnectionSummaryEntry,
  type KeyLatchStates,
  type ModuleState,
  type ModuleStatus,
  type OverallState,
  type StatusDocument,
  type StatusInputs,
  statusChangeKey,
} from './status-document.js';
export { type StatusWriter, type StatusWriterOptions, startStatusWriter, writeFileAtomic } from './status-writer.js';
export {
  CAPABILITIES,
  defaultConfigText,
  IP_ADDRESS_ALLOW,
  renderUnit,
  SERVICE_NAME,
  type UnitOptions,
} from './systemd-unit.js';
