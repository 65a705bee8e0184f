// Public surface of lib/identity: from the kernel's connect record to the caller's claims.
export {
  type CallerClaims,
  ClaimsResolver,
  type GroupLookup,
  type OriginFacts,
  type ResolverOptions,
  type UserLookup,
} from './claims.js';
export {
  containerIdFromCgroup,
  currentComm,
  type ExeIdentity,
  type ProcessSnapshot,
  type ProcessSnapshotReader,
  readExeIdentity,
  readExePath,
  readProcessSnapshot,
  readProcFacts,
  readStartTime,
} from './proc.js';
export { MAX_CMDLINE, redactCmdline } from './redact.js';
export { loopbackPeerUid } from './socket-owner.js';
export { type LogonLookup, windowsClaims, windowsUserName } from './windows.js';
