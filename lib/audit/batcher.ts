import { Buffer } from 'node:buffer';
import type { RequestAuditRecord } from '../proxy/index.js';
import { formatAuditLine } from './format.js';
import { cachedSummaryOf, type SummaryDelta } from './summaries.js';

/** What a worker hands to the log writer: ready-made JSON lines and summary counts. */
export interface AuditBatch {
  /**
   * The lines, ASCII (so also UTF-8), in a buffer of its own: a worker transfers it to the main
   * thread instead of copying (see `transferList`).
   */
  bytes: Uint8Array;
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

/** A typical line's length (bytes): a batch's buffer starts at this per record and grows if needed. */
const LINE_ESTIMATE = 768;
/** Written buffers kept for reuse (see `recycle`), and the largest kept: one odd huge batch is not. */
const SPARE_BUFFERS = 4;
const SPARE_MAX_BYTES = 4 * 1024 * 1024;

/**
 * Collects audit records on the thread that served the requests and turns them into lines in
 * batches, after the responses went out (a timer, not the request path). The sink receives one
 * batch per flush: in a worker it posts to the main thread, which owns the file.
 */
export class AuditBatcher {
  private queue: RequestAuditRecord[] = [];
  private timer: NodeJS.Timeout | null = null;
  private droppedSinceFlush = 0;
  /** Buffers of earlier batches, written and handed back, to format the next batches into. */
  private spares: ArrayBuffer[] = [];
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

  /**
   * Takes back a batch's buffer once its lines are written (the sink's consumer calls it, or the
   * main thread posts the buffer back to a worker). A few are kept, the largest, so a steady load
   * formats its batches into the same memory instead of allocating ~400 KiB per batch.
   */
  recycle(buffer: ArrayBuffer): void {
    if (buffer.byteLength === 0 || buffer.byteLength > SPARE_MAX_BYTES) return; // detached, or too big to keep
    if (this.spares.length < SPARE_BUFFERS) this.spares.push(buffer);
    else {
      let smallest = 0;
      for (let i = 1; i < this.spares.length; i++)
        if (this.spares[i]!.byteLength < this.spares[smallest]!.byteLength) smallest = i;
      if (this.spares[smallest]!.byteLength < buffer.byteLength) this.spares[smallest] = buffer;
    }
  }

  /** Spare buffers held (for tests and metrics). */
  get spareCount(): number {
    return this.spares.length;
  }

  /** A spare of at least `size` bytes, or a new buffer of exactly that. */
  private batchBuffer(size: number): Buffer {
    for (let i = 0; i < this.spares.length; i++) {
      const ab = this.spares[i]!;
      if (ab.byteLength >= size) {
        this.spares[i] = this.spares[this.spares.length - 1]!;
        this.spares.pop();
        return Buffer.from(ab);
      }
    }
    return Buffer.allocUnsafeSlow(size);
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
    // Each line is copied into the batch's buffer as it is made: one ASCII line is one byte per
    // code unit (formatAuditLine writes nothing else), and joining hundreds of lines into one
    // string first would cost V8 a walk over every piece of every line.
    let bytes = this.batchBuffer(records.length * LINE_ESTIMATE);
    let used = 0;
    // A request that failed authorization also counts in the failed table: kept apart from an
    // allowed one with the same key.
    const deltas = new Map<string, SummaryDelta>();
    const failedDeltas = new Map<string, SummaryDelta>();
    for (const r of records) {
      const line = formatAuditLine(r);
      if (used + line.length > bytes.length) {
        const bigger = Buffer.allocUnsafeSlow(Math.max(bytes.length * 2, used + line.length));
        bytes.copy(bigger, 0, 0, used);
        this.recycle(bytes.buffer as ArrayBuffer);
        bytes = bigger;
      }
      used += bytes.write(line, used, 'latin1');
      const s = cachedSummaryOf(r);
      const into = s.failed ? failedDeltas : deltas;
      const d = into.get(s.key);
      if (d === undefined) into.set(s.key, [s.key, s.entry, 1, s.failed]);
      else d[2]++;
    }
    const dropped = this.droppedSinceFlush;
    this.droppedSinceFlush = 0;
    this.sink({
      bytes: bytes.subarray(0, used),
      records: records.length,
      summaries: [...deltas.values(), ...failedDeltas.values()],
      dropped,
    });
  }
}

/** What to transfer (not copy) when posting a batch to another thread: its own byte buffer. */
export function transferList(batch: AuditBatch): ArrayBuffer[] {
  return [batch.bytes.buffer as ArrayBuffer];
}
