import type { RequestAuditRecord } from '../proxy/index.js';
import { formatAuditLine } from './format.js';
import { type SummaryDelta, summaryOf } from './summaries.js';

/** What a worker hands to the log writer: ready-made JSON lines and summary counts. */
export interface AuditBatch {
  text: string;
  records: number;
  summaries: SummaryDelta[];
  /** Records this batcher had to drop since the last batch (queue full). */
  dropped: number;
}

export interface BatcherOptions {
  /** Records held before new ones are dropped (and counted) instead of growing memory. */
  maxQueue?: number;
  /** Batch size that triggers an immediate flush. */
  batchSize?: number;
  /** Longest a record waits before its batch is flushed. */
  flushMs?: number;
}

/**
 * Collects audit records on the thread that served the requests and turns them into lines in
 * batches, after the responses went out (a timer, not the request path). The sink receives one
 * batch per flush: in a worker it posts to the main thread, which owns the file.
 */
export class AuditBatcher {
  private queue: RequestAuditRecord[] = [];
  private timer: NodeJS.Timeout | null = null;
  private droppedSinceFlush = 0;
  private readonly maxQueue: number;
  private readonly batchSize: number;
  private readonly flushMs: number;
  /** Totals for metrics. */
  accepted = 0;
  dropped = 0;

  constructor(
    private readonly sink: (batch: AuditBatch) => void,
    opts: BatcherOptions = {},
  ) {
    this.maxQueue = opts.maxQueue ?? 50_000;
    this.batchSize = opts.batchSize ?? 512;
    this.flushMs = opts.flushMs ?? 25;
  }

  /** Queues a record; 'dropped' only when the queue is full (the writer cannot keep up at all). */
  record(r: RequestAuditRecord): 'written' | 'dropped' {
    if (this.queue.length >= this.maxQueue) {
      this.dropped++;
      this.droppedSinceFlush++;
      return 'dropped';
    }
    this.queue.push(r);
    this.accepted++;
    if (this.queue.length >= this.batchSize) setImmediate(() => this.flush());
    else if (this.timer === null) {
      this.timer = setTimeout(() => this.flush(), this.flushMs);
      this.timer.unref();
    }
    return 'written';
  }

  /** Formats and hands over everything queued. */
  flush(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.queue.length === 0 && this.droppedSinceFlush === 0) return;
    const records = this.queue;
    this.queue = [];
    let text = '';
    const deltas = new Map<string, SummaryDelta>();
    for (const r of records) {
      text += formatAuditLine(r);
      const s = summaryOf(r);
      const d = deltas.get(s.key);
      if (d === undefined) deltas.set(s.key, [s.key, s.entry, 1, s.failed]);
      else d[2]++;
    }
    const dropped = this.droppedSinceFlush;
    this.droppedSinceFlush = 0;
    this.sink({ text, records: records.length, summaries: [...deltas.values()], dropped });
  }
}
