/**
 * The eBPF redirector: redirects TCP connects to the metadata endpoints to the agent's listener
 * and says who connected. The only import surface of lib/redirector. See docs/redirector.md.
 */

export { normaliseAddress } from './addresses.js';
export { discoverCgroup2Root, inPidNamespace, isCgroup2Dir, parseCgroup2Mounts } from './cgroup.js';
export { RedirectorError } from './errors.js';
export { STAT_NAMES, STRUCT_SIZES } from './layout.js';
export {
  type AddonStartOptions,
  addonPath,
  bpfObjectPath,
  type ClientSocketIo,
  type IoEventHandler,
} from './native.js';
export {
  addExemptPid,
  addonStartOptions,
  clientSocketIo,
  createReusePortListener,
  DEFAULT_CONN_MAP_SIZE,
  DEFAULT_PIN_DIR,
  groupName,
  listRules,
  logonSessionInfo,
  lookupConnection,
  lookupSocket,
  nativeHmac,
  nativeLayoutSizes,
  probe,
  processSnapshotReader,
  removeExemptPid,
  removeRule,
  type StartHost,
  setRule,
  socketLookupSupported,
  start,
  stats,
  status,
  stop,
  trimNativeHeap,
  userInfo,
} from './redirector.js';
export { type SelfTestOptions, type SelfTestResult, selfTest } from './self-test.js';
export type {
  ConnOrigin,
  LinuxConnOrigin,
  LogonSessionInfo,
  ProbeResult,
  RedirectorProgram,
  RedirectorStartOptions,
  RedirectorStatus,
  RedirectRule,
  SocketEnd,
  UserInfo,
  WindowsConnOrigin,
} from './types.js';
