/**
 * Prometheus metrics for the agent: one prom-client Registry per thread (never the global default),
 * label values only from fixed enums, workers' registries merged by the main thread at scrape time,
 * and a `/metrics` server bound to loopback.
 */
export { mergeThreadMetrics, PROMETHEUS_CONTENT_TYPE, type ThreadMetrics } from './aggregate.js';
export {
  ControlMetrics,
  type KeyMetricsInput,
  type PolicyCompileInput,
  type RedirectorMetricsInput,
} from './control-metrics.js';
export { EventLoopBusy } from './event-loop.js';
export {
  DECISIONS,
  decisionLabel,
  ENDPOINTS,
  endpointLabel,
  MODES,
  REASON_CODES,
  reasonLabel,
  registerReasonCodes,
  statusLabel,
} from './labels.js';
export {
  ADDED_LATENCY_BUCKETS,
  type RequestDoneRecord,
  RequestMetrics,
  UPSTREAM_LATENCY_BUCKETS,
} from './request-metrics.js';
export { isLoopbackAddress, type MetricsServer, type MetricsServerOptions, startMetricsServer } from './server.js';
export { type AgentMetrics, createAgentMetrics, createWorkerMetrics, type WorkerMetrics } from './thread-metrics.js';
export {
  answerMetricsRequests,
  type MessageEndpoint,
  type MetricsRequestMessage,
  type MetricsResponseMessage,
  requestWorkerMetrics,
} from './worker-protocol.js';
