import { type CounterChild, FastCounter, FastHistogram, type HistogramChild } from './fast-metrics.js';
import { DECISIONS, ENDPOINTS, type MetricEndpoint, reasonLabel, statusLabel } from './labels.js';
import type { Registry } from './prom.js';

/**
 * What the data plane reports once per finished request (the `onRequestDone` hook). Every field
 * but `status` is optional so a partial record (e.g. an agent-generated 400 before attribution)
 * is still counted. Times are in seconds.
 */
export interface RequestDoneRecord {
  /** 'imds' | 'wireserver' | 'hostga'; anything else (or absent) counts as 'unknown'. */
  endpoint?: string | null;
  /** Decision outcome; absent when the agent answered before deciding (counted as 'error'). */
  outcome?: string | null;
  /** HTTP status sent to the client (0 when the connection closed before one was sent). */
  status: number;
  /** Stable reason code of a deny / audit-deny (Decision.code). */
  code?: string | null;
  /** false when the connection could not be attributed to a caller. */
  attributed?: boolean;
  /** Time the agent itself added (total minus upstream). */
  addedSeconds?: number | null;
  /** Time spent waiting on the upstream (request sent to response head), when forwarded. */
  upstreamSeconds?: number | null;
  /** Set when forwarding failed. */
  upstreamError?: 'error' | 'timeout' | null;
  /**
   * Whether the data plane could queue the audit record. Not counted here: the audit log on the main
   * thread counts what reached the disk (AgentMetrics.setAuditSource).
   */
  audit?: 'written' | 'dropped' | null;
}

export const ADDED_LATENCY_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];
export const UPSTREAM_LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

const ALL_ENDPOINTS: readonly MetricEndpoint[] = [...ENDPOINTS, 'unknown'];

function endpointIndex(v: unknown): number {
  return v === 'imds' ? 0 : v === 'wireserver' ? 1 : v === 'hostga' ? 2 : 3;
}
function decisionIndex(outcome: unknown): number {
  return outcome === 'allow' ? 0 : outcome === 'deny' ? 1 : outcome === 'audit-deny' ? 2 : outcome === 'local' ? 4 : 3;
}
const NDECISIONS = DECISIONS.length;

/**
 * Request-path metrics of one thread. Every series a request touches is found by small integer
 * indexes or a Map keyed by the status number / reason code string, so recording a request is a
 * few array reads and adds, with no label hashing (see fast-metrics.ts).
 */
export class RequestMetrics {
  /** [endpoint * NDECISIONS + decision] */
  private readonly added: HistogramChild[] = [];
  private readonly upstream: HistogramChild[] = [];
  /** [endpoint * NDECISIONS + decision] -> status -> series */
  private readonly byStatus: Map<number, CounterChild>[] = [];
  /** [endpoint] -> reason code -> series */
  private readonly denialsByReason: Map<string | null | undefined, CounterChild>[] = [];
  /** [endpoint * 2 + (timeout ? 1 : 0)] */
  private readonly upstreamErrors: CounterChild[] = [];
  private readonly requests: FastCounter;
  private readonly denials: FastCounter;
  private readonly attributionMisses: CounterChild;
  private readonly auditWritten: CounterChild;
  private readonly auditDropped: CounterChild;

  constructor(registry: Registry) {
    const addedH = new FastHistogram(
      'gpa_request_added_latency_seconds',
      'Latency the agent adds to a request (total minus upstream), by endpoint and decision',
      ['endpoint', 'decision'],
      ADDED_LATENCY_BUCKETS,
      registry,
    );
    const upstreamH = new FastHistogram(
      'gpa_upstream_latency_seconds',
      'Time waiting on the metadata service for forwarded requests, by endpoint and decision',
      ['endpoint', 'decision'],
      UPSTREAM_LATENCY_BUCKETS,
      registry,
    );
    const upstreamErr = new FastCounter(
      'gpa_upstream_errors_total',
      'Forwarding failures by endpoint and kind (error = refused/reset/bad response, timeout)',
      ['endpoint', 'kind'],
      registry,
    );
    this.requests = new FastCounter(
      'gpa_requests_total',
      'Requests answered, by endpoint, decision and HTTP status',
      ['endpoint', 'decision', 'status'],
      registry,
    );
    this.denials = new FastCounter(
      'gpa_denials_total',
      'Deny and audit-deny decisions by endpoint and stable reason code',
      ['endpoint', 'reason'],
      registry,
    );
    for (const e of ALL_ENDPOINTS) {
      for (const d of DECISIONS) {
        this.added.push(addedH.labels(e, d));
        this.upstream.push(upstreamH.labels(e, d));
        this.byStatus.push(new Map());
      }
      this.denialsByReason.push(new Map());
      // Zero-initialised so rate() has a series before the first failure.
      for (const k of ['error', 'timeout']) this.upstreamErrors.push(upstreamErr.labels(e, k));
    }
    this.attributionMisses = new FastCounter(
      'gpa_attribution_misses_total',
      'Requests refused because their connection had no kernel record of its caller (answered 421)',
      [],
      registry,
    ).labels();
    const audit = new FastCounter(
      'gpa_audit_records_total',
      'Audit records by result: written to the log file, or dropped (queue or backlog full, write failed)',
      ['result'],
      registry,
    );
    this.auditWritten = audit.labels('written');
    this.auditDropped = audit.labels('dropped');
  }

  /** The data-plane hook: call once per finished request. Never throws. */
  onRequestDone(r: RequestDoneRecord): void {
    try {
      this.record(r);
    } catch {
      // Metrics must never break the request path.
    }
  }

  /** Counts audit records written or dropped outside the request hook (e.g. by the audit writer). */
  onAudit(result: 'written' | 'dropped', n = 1): void {
    (result === 'written' ? this.auditWritten : this.auditDropped).inc(n);
  }

  /** Sets the audit totals from their one owner, the audit log writer (main thread, at scrape). */
  setAuditTotals(written: number, dropped: number): void {
    this.auditWritten.value = written;
    this.auditDropped.value = dropped;
  }

  private record(r: RequestDoneRecord): void {
    const ei = endpointIndex(r.endpoint);
    const di = r.outcome == null ? 3 : decisionIndex(r.outcome);
    const slot = ei * NDECISIONS + di;
    const statuses = this.byStatus[slot]!;
    let child = statuses.get(r.status);
    if (child === undefined) {
      child = this.requests.labels(ALL_ENDPOINTS[ei]!, DECISIONS[di]!, statusLabel(r.status));
      statuses.set(r.status, child);
    }
    child.inc();
    if (di === 1 || di === 2) {
      const reasons = this.denialsByReason[ei]!;
      let d = reasons.get(r.code);
      if (d === undefined) {
        d = this.denials.labels(ALL_ENDPOINTS[ei]!, reasonLabel(r.code));
        // Only known codes get their own map entry; the rest share 'other' without growing the map.
        if (reasonLabel(r.code) !== 'other') reasons.set(r.code, d);
      }
      d.inc();
    }
    if (r.attributed === false) this.attributionMisses.inc();
    if (isSeconds(r.addedSeconds)) this.added[slot]!.observe(r.addedSeconds);
    if (isSeconds(r.upstreamSeconds)) this.upstream[slot]!.observe(r.upstreamSeconds);
    if (r.upstreamError === 'error') this.upstreamErrors[ei * 2]!.inc();
    else if (r.upstreamError === 'timeout') this.upstreamErrors[ei * 2 + 1]!.inc();
  }
}

function isSeconds(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}
