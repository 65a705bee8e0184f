// Public surface of the data plane: the listener each worker thread runs, its HTTP/1.1 pieces
// (exported for tests and benchmarks), and the types the worker and agent wire together.
export { ChunkedDecoder } from './chunked.js';
export { ClientConnection, normalizeAddress } from './client-connection.js';
export type { ClientSocket } from './client-socket.js';
export {
  ConnectionCounter,
  type ConnectionLimits,
  defaultConnectionLimits,
  openFilesLimit,
  perWorker,
  UNATTRIBUTED_UID,
} from './connection-limits.js';
export { type ListenSpec, ProxyListener, type ProxyListenerOptions } from './listener.js';
export { NativeClientSocket, NativeIo, NativeUpstreamSocket, nativeIoFor } from './native-io.js';
export {
  ALLOW_HEADER_VALUE,
  ALLOWED_METHODS,
  DEFAULT_HEAD_LIMITS,
  type HeadLimits,
  type HeadResult,
  parseRequestHead,
  type RequestHead,
} from './request-head.js';
export { type BodyFraming, parseResponseHead, type ResponseHead } from './response-head.js';
export { PASS_THROUGH_MARKER } from './responses.js';
export {
  type BodyLimits,
  type CallerClaims,
  type ConnOriginLike,
  DEFAULT_BODY_LIMITS,
  DEFAULT_TIMEOUTS,
  type Decision,
  type Endpoint,
  type EndpointRoute,
  type Mode,
  type ProxyContext,
  type ProxySnapshot,
  type ProxyTimeouts,
  type RequestAuditRecord,
  type RequestDoneInfo,
} from './types.js';
export { DEFAULT_POOL_OPTIONS, type PoolOptions, UpstreamPool, type UpstreamTarget } from './upstream-pool.js';
export { buildUpstreamHead, hostDate } from './upstream-request.js';
