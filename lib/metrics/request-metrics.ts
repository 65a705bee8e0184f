import { Counter, Histogram, type Registry } from 'prom-client';
import {
  DECISIONS,
  decisionLabel,
  ENDPOINTS,
  endpointLabel,
  type MetricDecision,
  type MetricEndpoint,
  reasonLabel,
  statusLabel,
} from './labels.js';

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
  /** Whether the audit record for this request was written or dropped (queue full, disk error). */
  audit?: 'written' | 'dropped' | null;
}

export const ADDED_LATENCY_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];
export const UPSTREAM_LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

type Observer = { observe(v: number): void };
type Incrementer = { inc(v?: number): void };

/**
 * Request-path metrics of one thread. Label children for the endpoint × decision grid are bound once
 * here, so the per-request cost is a Map lookup and an add; status and reason children are bound on
 * first use and cached (their values are bounded by the label normalisers).
 */
export class RequestMetrics {
  private readonly added = new Map<string, Observer>();
  private readonly upstream = new Map<string, Observer>();
  private readonly requests: Counter<'endpoint' | 'decision' | 'status'>;
  private readonly requestChildren = new Map<string, Incrementer>();
  private readonly denials: Counter<'endpoint' | 'reason'>;
  private readonly denialChildren = new Map<string, Incrementer>();
  private readonly attributionMisses: Incrementer;
  private readonly upstreamErrors = new Map<string, Incrementer>();
  private readonly auditWritten: Incrementer;
  private readonly auditDropped: Incrementer;

  constructor(registry: Registry) {
    const addedH = new Histogram({
      name: 'gpa_request_added_latency_seconds',
      help: 'Latency the agent adds to a request (total minus upstream), by endpoint and decision',
      labelNames: ['endpoint', 'decision'],
      buckets: ADDED_LATENCY_BUCKETS,
      registers: [registry],
    });
    const upstreamH = new Histogram({
      name: 'gpa_upstream_latency_seconds',
      help: 'Time waiting on the metadata service for forwarded requests, by endpoint and decision',
      labelNames: ['endpoint', 'decision'],
      buckets: UPSTREAM_LATENCY_BUCKETS,
      registers: [registry],
    });
    const upstreamErr = new Counter({
      name: 'gpa_upstream_errors_total',
      help: 'Forwarding failures by endpoint and kind (error = refused/reset/bad response, timeout)',
      labelNames: ['endpoint', 'kind'],
      registers: [registry],
    });
    for (const e of [...ENDPOINTS, 'unknown'] as MetricEndpoint[]) {
      for (const d of DECISIONS) {
        this.added.set(`${e}|${d}`, addedH.labels(e, d));
        this.upstream.set(`${e}|${d}`, upstreamH.labels(e, d));
      }
      for (const k of ['error', 'timeout']) {
        // Zero-initialised so rate() has a series before the first failure.
        upstreamErr.inc({ endpoint: e, kind: k }, 0);
        this.upstreamErrors.set(`${e}|${k}`, upstreamErr.labels(e, k));
      }
    }
    this.requests = new Counter({
      name: 'gpa_requests_total',
      help: 'Requests answered, by endpoint, decision and HTTP status',
      labelNames: ['endpoint', 'decision', 'status'],
      registers: [registry],
    });
    this.denials = new Counter({
      name: 'gpa_denials_total',
      help: 'Deny and audit-deny decisions by endpoint and stable reason code',
      labelNames: ['endpoint', 'reason'],
      registers: [registry],
    });
    this.attributionMisses = new Counter({
      name: 'gpa_attribution_misses_total',
      help: 'Connections the agent could not attribute to a process (answered 421)',
      registers: [registry],
    });
    const audit = new Counter({
      name: 'gpa_audit_records_total',
      help: 'Audit records by result (written, dropped)',
      labelNames: ['result'],
      registers: [registry],
    });
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

  private record(r: RequestDoneRecord): void {
    const endpoint = endpointLabel(r.endpoint);
    const decision: MetricDecision = r.outcome == null ? 'error' : decisionLabel(r.outcome);
    const key = `${endpoint}|${decision}`;
    const status = statusLabel(r.status);
    const reqKey = `${key}|${status}`;
    let child = this.requestChildren.get(reqKey);
    if (!child) {
      child = this.requests.labels(endpoint, decision, status);
      this.requestChildren.set(reqKey, child);
    }
    child.inc();
    if (decision === 'deny' || decision === 'audit-deny') {
      const reason = reasonLabel(r.code);
      const dKey = `${endpoint}|${reason}`;
      let d = this.denialChildren.get(dKey);
      if (!d) {
        d = this.denials.labels(endpoint, reason);
        this.denialChildren.set(dKey, d);
      }
      d.inc();
    }
    if (r.attributed === false) this.attributionMisses.inc();
    if (isSeconds(r.addedSeconds)) this.added.get(key)!.observe(r.addedSeconds);
    if (isSeconds(r.upstreamSeconds)) this.upstream.get(key)!.observe(r.upstreamSeconds);
    if (r.upstreamError === 'error' || r.upstreamError === 'timeout') {
      this.upstreamErrors.get(`${endpoint}|${r.upstreamError}`)!.inc();
    }
    if (r.audit === 'written') this.auditWritten.inc();
    else if (r.audit === 'dropped') this.auditDropped.inc();
  }
}

function isSeconds(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}
