import type { ThreadMetrics } from './aggregate.js';
import { mergeThreadMetrics } from './aggregate.js';
import { ControlMetrics } from './control-metrics.js';
import { EventLoopBusy } from './event-loop.js';
import { aggregate, collectDefaultMetrics, Registry } from './prom.js';
import { type RequestDoneRecord, RequestMetrics } from './request-metrics.js';
import { type MessageEndpoint, requestWorkerMetrics } from './worker-protocol.js';

/** A data-plane worker's metrics: its own Registry (never prom-client's global one). */
export interface WorkerMetrics {
  readonly registry: Registry;
  readonly requests: RequestMetrics;
  /** The data-plane hook, bound so it can be passed around as a plain function. */
  readonly onRequestDone: (r: RequestDoneRecord) => void;
  getMetricsAsJSON(): Promise<ThreadMetrics>;
  close(): void;
}

/** Creates the metrics of worker thread number `workerIndex`. */
export function createWorkerMetrics(workerIndex: number): WorkerMetrics {
  const registry = new Registry();
  const requests = new RequestMetrics(registry);
  const loop = new EventLoopBusy(registry, workerIndex);
  return {
    registry,
    requests,
    onRequestDone: (r) => requests.onRequestDone(r),
    getMetricsAsJSON: () => registry.getMetricsAsJSON() as Promise<ThreadMetrics>,
    close: () => loop.stop(),
  };
}

/** The main thread's metrics plus the merge of every worker's at scrape time. */
export interface AgentMetrics {
  readonly registry: Registry;
  readonly control: ControlMetrics;
  /** Request metrics for requests the main thread answers itself (normally none). */
  readonly requests: RequestMetrics;
  /** Replaces the set of workers asked at each scrape (call when workers start or restart). */
  /** All workers at once, by index (null: that worker is gone and not replaced yet). */
  setWorkers(workers: (MessageEndpoint | null)[]): void;
  /**
   * Worker number `index` is now `worker` (null: gone, not replaced yet). What the previous worker
   * in that place was last seen to have counted stays in the totals, so counters never go back.
   */
  setWorker(index: number, worker: MessageEndpoint | null): void;
  /** Where gpa_audit_records_total comes from: the audit log writer's totals, read at each scrape. */
  setAuditSource(source: () => { written: number; dropped: number }): void;
  /** Collects main + all workers and renders the Prometheus text. */
  gather(): Promise<string>;
  close(): void;
}

/** One worker's place in the scrape: the worker, and what it answered last. */
interface WorkerSlot {
  worker: MessageEndpoint | null;
  last: ThreadMetrics | null;
  retired: boolean;
  pending: number;
}

/** Only what accumulates: a gone worker's gauges said something about that worker alone. */
function cumulativeOnly(m: ThreadMetrics): ThreadMetrics {
  return m.filter((x) => String(x.type) === 'counter' || String(x.type) === 'histogram');
}

/** Creates the main thread's registry: control-plane metrics, process metrics, main-loop busy time. */
export function createAgentMetrics(opts: { workerTimeoutMs?: number; processMetrics?: boolean } = {}): AgentMetrics {
  const registry = new Registry();
  const control = new ControlMetrics(registry);
  const requests = new RequestMetrics(registry);
  const loop = new EventLoopBusy(registry, 'main');
  // Process-wide numbers (RSS, CPU, fds) exist once per process, so only the main thread reports them.
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'gpa_' });
  let slots: WorkerSlot[] = [];
  // Workers that are gone: their last answers, kept apart while a scrape may still update one.
  let retired: WorkerSlot[] = [];
  // ...and folded into one set once nothing can.
  let retiredTotal: ThreadMetrics | null = null;
  let auditSource: (() => { written: number; dropped: number }) | null = null;

  const retire = (slot: WorkerSlot | undefined) => {
    if (slot === undefined || slot.retired) return;
    slot.retired = true;
    slot.worker = null;
    retired.push(slot);
  };
  const foldRetired = async () => {
    const settled = retired.filter((s) => s.pending === 0);
    if (settled.length === 0) return;
    retired = retired.filter((s) => s.pending !== 0);
    const sets = settled.flatMap((s) => (s.last === null ? [] : [cumulativeOnly(s.last)]));
    if (sets.length === 0) return;
    if (retiredTotal !== null) sets.push(retiredTotal);
    retiredTotal = (await aggregate(sets).getMetricsAsJSON()) as ThreadMetrics;
  };
  const ask = async (slot: WorkerSlot): Promise<void> => {
    if (slot.worker === null) return;
    slot.pending++;
    try {
      const m = await requestWorkerMetrics(slot.worker, opts.workerTimeoutMs ?? 1000);
      // A busy worker that does not answer in time counts with what it said last.
      if (m !== null) slot.last = m;
    } finally {
      slot.pending--;
    }
  };

  const api: AgentMetrics = {
    registry,
    control,
    requests,
    setWorker(index, worker) {
      if (slots[index]?.worker === worker && worker !== null) return;
      retire(slots[index]);
      slots[index] = { worker, last: null, retired: false, pending: 0 };
    },
    setWorkers(ws) {
      ws.forEach((w, i) => {
        api.setWorker(i, w);
      });
      for (let i = ws.length; i < slots.length; i++) retire(slots[i]);
      slots = slots.slice(0, ws.length);
    },
    setAuditSource(source) {
      auditSource = source;
    },
    async gather() {
      if (auditSource !== null) {
        const a = auditSource();
        requests.setAuditTotals(a.written, a.dropped);
      }
      await foldRetired();
      const asked = [...slots];
      await Promise.all(asked.map(ask));
      const sets: ThreadMetrics[] = [(await registry.getMetricsAsJSON()) as ThreadMetrics];
      // Each worker's answer counts once: through its slot while it lives, through `retired` once
      // it is gone (also when it went while this scrape waited for another worker).
      for (const s of asked) if (s !== undefined && !s.retired && s.last !== null) sets.push(s.last);
      for (const s of retired) if (s.last !== null) sets.push(cumulativeOnly(s.last));
      if (retiredTotal !== null) sets.push(retiredTotal);
      return mergeThreadMetrics(sets);
    },
    close: () => loop.stop(),
  };
  return api;
}
