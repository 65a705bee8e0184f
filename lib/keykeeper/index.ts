// Public surface of the key keeper: the secure-channel state machine and the one KeySnapshot.
export { ENDPOINTS, type Endpoint, type KeySnapshot, type LatchedKey, type Mode } from './types.js';
