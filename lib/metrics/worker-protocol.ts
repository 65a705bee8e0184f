import type { ThreadMetrics } from './aggregate.js';

/**
 * The two messages between the main thread and a worker for a scrape. They ride on the worker's
 * existing message channel; any other message is ignored by these helpers, so the data plane's own
 * messages can share the channel.
 */
export interface MetricsRequestMessage {
  type: 'gpa:metrics-request';
  id: number;
}
export interface MetricsResponseMessage {
  type: 'gpa:metrics-response';
  id: number;
  metrics: ThreadMetrics;
}

/** Minimal shape of `parentPort` / `MessagePort` / `Worker` used here. */
export interface MessageEndpoint {
  postMessage(msg: unknown): void;
  on(event: 'message', fn: (msg: unknown) => void): unknown;
  off(event: 'message', fn: (msg: unknown) => void): unknown;
}

function isRequest(m: unknown): m is MetricsRequestMessage {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'gpa:metrics-request';
}
function isResponse(m: unknown, id: number): m is MetricsResponseMessage {
  return (
    typeof m === 'object' &&
    m !== null &&
    (m as { type?: unknown }).type === 'gpa:metrics-response' &&
    (m as { id?: unknown }).id === id
  );
}

/** In a worker: answers scrape requests with this thread's metrics. Returns a function that stops it. */
export function answerMetricsRequests(
  port: MessageEndpoint,
  getMetricsAsJSON: () => Promise<ThreadMetrics>,
): () => void {
  const onMessage = (m: unknown) => {
    if (!isRequest(m)) return;
    getMetricsAsJSON().then(
      (metrics) =>
        port.postMessage({ type: 'gpa:metrics-response', id: m.id, metrics } satisfies MetricsResponseMessage),
      () => port.postMessage({ type: 'gpa:metrics-response', id: m.id, metrics: [] } satisfies MetricsResponseMessage),
    );
  };
  port.on('message', onMessage);
  return () => port.off('message', onMessage);
}

let nextId = 1;

/**
 * On the main thread: asks one worker for its metrics. Resolves to null if it does not answer within
 * `timeoutMs` (a busy or dying worker must not hang the scrape).
 */
export function requestWorkerMetrics(worker: MessageEndpoint, timeoutMs = 1000): Promise<ThreadMetrics | null> {
  const id = nextId++;
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(null), timeoutMs);
    timer.unref?.();
    const onMessage = (m: unknown) => {
      if (isResponse(m, id)) finish(m.metrics);
    };
    function finish(v: ThreadMetrics | null) {
      clearTimeout(timer);
      worker.off('message', onMessage);
      resolve(v);
    }
    worker.on('message', onMessage);
    try {
      worker.postMessage({ type: 'gpa:metrics-request', id } satisfies MetricsRequestMessage);
    } catch {
      finish(null);
    }
  });
}
