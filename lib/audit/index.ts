// Public surface of lib/audit: per-request audit records as JSON lines (batched on the serving
// thread, written by the main thread), size rotation, and connection summaries for status.json.
export { type AuditBatch, AuditBatcher, type BatcherOptions, transferList } from './batcher.js';
export { asciiJson, formatAuditLine } from './format.js';
export { AUDIT_LOG_NAME, AuditLog, type AuditLogOptions } from './log-file.js';
export {
  ConnectionSummaries,
  MAX_SUMMARY_ROWS,
  type SummaryDelta,
  type SummaryEntry,
  summaryOf,
} from './summaries.js';
