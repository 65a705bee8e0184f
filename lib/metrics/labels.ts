import { PolicyCodes } from '../policy/index.js';

/**
 * Fixed label vocabularies. Every label value that reaches a metric goes through one of these
 * normalisers, so a series count is bounded by code, never by what a caller or the network sends
 * (no user names, paths, pids or raw reason strings as labels).
 */

export const ENDPOINTS = ['imds', 'wireserver', 'hostga'] as const;
export type MetricEndpoint = (typeof ENDPOINTS)[number] | 'unknown';

/** 'error' is an agent-generated answer given before any policy decision (400, 405, 421, 413...). */
export const DECISIONS = ['allow', 'deny', 'audit-deny', 'error', 'local'] as const;
export type MetricDecision = (typeof DECISIONS)[number];

export const MODES = ['disabled', 'audit', 'enforce'] as const;
export type MetricMode = (typeof MODES)[number];

/** Statuses the agent or the metadata services commonly return; anything else becomes its class ("5xx"). */
const KNOWN_STATUSES = new Set([
  200, 201, 202, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 408, 409, 410, 413, 414, 421, 429, 431, 500, 502,
  503, 504,
]);

/**
 * Denial reason codes: the policy part's stable codes (PolicyCodes) plus the data plane's own
 * answers before a decision. A code not in the set is counted as 'other'.
 */
export const REASON_CODES = new Set<string>([
  ...Object.keys(PolicyCodes),
  // lib/proxy DataPlaneCodes (answers given before or instead of a decision)
  'bad_request',
  'method_not_allowed',
  'body_too_large',
  'headers_too_large',
  'unattributed',
  'no_policy',
  'header_timeout',
  'upstream_unreachable',
  'upstream_connect_timeout',
  'upstream_timeout',
  'upstream_bad_response',
  'client_closed',
  'local',
]);

/** Normalises an endpoint name to the fixed set. */
export function endpointLabel(v: unknown): MetricEndpoint {
  return v === 'imds' || v === 'wireserver' || v === 'hostga' ? v : 'unknown';
}

/** Normalises a decision outcome to the fixed set. */
export function decisionLabel(v: unknown): MetricDecision {
  return v === 'allow' || v === 'deny' || v === 'audit-deny' || v === 'local' ? v : 'error';
}

/** An HTTP status as a bounded label: the code itself when common, else its class. */
export function statusLabel(status: unknown): string {
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) return 'none';
  return KNOWN_STATUSES.has(status) ? String(status) : `${Math.floor(status / 100)}xx`;
}

/** A reason code as a bounded label. */
export function reasonLabel(code: unknown): string {
  return typeof code === 'string' && REASON_CODES.has(code) ? code : 'other';
}

/** Adds reason codes the policy part defines (called once at start-up with its code list). */
export function registerReasonCodes(codes: Iterable<string>): void {
  for (const c of codes) if (/^[A-Za-z0-9_.-]{1,64}$/.test(c)) REASON_CODES.add(c);
}

/** A thread label: 'main' or 'worker-N' with N below a fixed bound. */
export function threadLabel(workerIndex: number | 'main'): string {
  if (workerIndex === 'main') return 'main';
  return Number.isInteger(workerIndex) && workerIndex >= 0 && workerIndex < 256
    ? `worker-${workerIndex}`
    : 'worker-other';
}
