// Public surface of the metadata host emulator (IMDS, WireServer with the secure channel,
// HostGAPlugin) used by the demo, tests and benchmarks.
export { controlRequest } from './control-client.js';
export { type Emulator, type EmulatorOptions, type HostPort, isLoopbackHost, startEmulator } from './emulator.js';
export type { Fault, FaultKind, FaultSpec } from './faults.js';
export type { HostStateView } from './host-core.js';
export type { HostKey, HostSettings, HostSettingsPatch, PayloadVersion } from './host-state.js';
export type { JournalEntry, SignatureVerdict } from './journal.js';
export { findProxyAgentSettings, type VmModelResult } from './vm-model.js';
export { watchVmModelFile } from './vm-model-file.js';
export { parseProfileReference } from './vm-profiles.js';
