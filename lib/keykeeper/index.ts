// Public surface of the key keeper: the secure-channel state machine and the one KeySnapshot.
export { createKeyKeeper, KeyKeeper, type KeyKeeperOptions } from './keeper.js';
export { type KeyRecord, KeyStore, parseKeyRecord } from './key-store.js';
export { type DerivedState, deriveState, statusKnown } from './modes.js';
export { parseStatus, type SecureChannelStatus } from './status-parse.js';
export { ENDPOINTS, type Endpoint, type KeySnapshot, type LatchedKey, type Mode } from './types.js';
