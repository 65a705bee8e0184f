/**
 * Fixed label vocabularies. Every label value that reaches a metric goes through one of these
 * normalisers, so a series count is bounded by code, never by what a caller or the network sends
 * (no user names, paths, pids or raw reason strings as labels).
 */

export const ENDPOINTS = ['imds', 'wireserver', 'hostga'] as const;
export type MetricEndpoint = (typeof ENDPOINTS)[number] | 'unknown';

/** 'error' is an agent-generated answer given before any policy decision (400, 405, 421, 413...). */
export const DECISIONS = ['allow', 'deny', 'audit-deny', 'error'] as const;
export type MetricDecision = (typeof DECISIONS)[number];

export const MODES = ['disabled', 'audit', 'enforce'] as const;
export type MetricMode = (typeof MODES)[number];

/** Statuses the agent or the metadata services commonly return; anything else becomes its class ("5xx"). */
const KNOWN_STATUSES = new Set([
  200, 201, 202, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 408, 409, 410, 413, 414, 421, 429, 431, 500, 502,
  503, 504,
]);

/**
 * Denial reason codes. The policy part owns the codes; this list bounds the label. A code not in it
 * is counted as 'other' (and `gpa_metrics_unknown_label_total` says so, so the list can be updated).
 */
export const REASON_CODES = new Set<string>([
  // generic data-plane reasons
  'unattributed',
  'method-not-allowed',
  'bad-request',
  'body-too-large',
  'uri-too-long',
  'headers-too-large',
  'canonicalization-failed',
  'fail-closed',
  'no-policy',
  // policy outcomes
  'default-deny',
  'no-matching-privilege',
  'no-matching-identity',
  'not-root',
  'query-mismatch',
  'exe-mismatch',
  'local-rule-deny',
]);

/** Normalises an endpoint name to the fixed set. */
export function endpointLabel(v: unknown): MetricEndpoint {
  return v === 'imds' || v === 'wireserver' || v === 'hostga' ? v : 'unknown';
}

/** Normalises a decision outcome to the fixed set. */
export function decisionLabel(v: unknown): MetricDecision {
  return v === 'allow' || v === 'deny' || v === 'audit-deny' ? v : 'error';
}

/** An HTTP status as a bounded label: the code itself when common, else its class. */
export function statusLabel(status: unknown): string {
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) return 'none';
  return KNOWN_STATUSES.has(status) ? String(status) : `${Math.floor(status / 100)}xx`;
}

/** A reason code as a bounded label. Codes look like 'default-deny' or 'GPA_DENY_X'; both normalise. */
export function reasonLabel(code: unknown): string {
  if (typeof code !== 'string') return 'other';
  if (REASON_CODES.has(code)) return code;
  const kebab = code.toLowerCase().replace(/_/g, '-');
  return REASON_CODES.has(kebab) ? kebab : 'other';
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
