import type { ThreadMetrics } from './aggregate.js';
import { mergeThreadMetrics } from './aggregate.js';
import { ControlMetrics } from './control-metrics.js';
import { EventLoopBusy } from './event-loop.js';
import { collectDefaultMetrics, Registry } from './prom.js';
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
  setWorkers(workers: MessageEndpoint[]): void;
  /** Collects main + all workers and renders the Prometheus text. */
  gather(): Promise<string>;
  close(): void;
}

/** Creates the main thread's registry: control-plane metrics, process metrics, main-loop busy time. */
export function createAgentMetrics(opts: { workerTimeoutMs?: number; processMetrics?: boolean } = {}): AgentMetrics {
  const registry = new Registry();
  const control = new ControlMetrics(registry);
  const requests = new RequestMetrics(registry);
  const loop = new EventLoopBusy(registry, 'main');
  // Process-wide numbers (RSS, CPU, fds) exist once per process, so only the main thread reports them.
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'gpa_' });
  let workers: MessageEndpoint[] = [];
  return {
    registry,
    control,
    requests,
    setWorkers(w) {
      workers = [...w];
    },
    async gather() {
      const sets = await Promise.all([
        registry.getMetricsAsJSON() as Promise<ThreadMetrics>,
        ...workers.map((w) => requestWorkerMetrics(w, opts.workerTimeoutMs ?? 1000)),
      ]);
      return mergeThreadMetrics(sets.filter((s): s is ThreadMetrics => s !== null));
    },
    close: () => loop.stop(),
  };
}
