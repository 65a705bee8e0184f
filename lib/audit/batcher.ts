import { Buffer } from 'node:buffer';
import type { RequestAuditRecord } from '../proxy/index.js';
import { auditLineRoom, writeAuditLine } from './format.js';
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
  /** Records one batch may hold before new ones are dropped (and counted) instead of growing memory. */
  maxQueue?: number;
  /** Records that make a batch full: it is handed over at once. */
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
 * Collects audit records on the thread that served the requests. Each record is written as its
 * line into the current batch's buffer when it is recorded (after its response went out), so no
 * record waits as an object and no flush formats hundreds of lines at once (which held any request
 * that arrived meanwhile: 100-250 µs per batch at one busy client). A batch is handed to the sink
 * when it is full or `flushMs` after its first record: in a worker the sink posts it to the main
 * thread, which owns the file.
 */
export class AuditBatcher {
  /** The batch being filled; null when nothing was recorded since the last hand-over. */
  private batch: OpenBatch | null = null;
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

  /** Writes a record's line into the open batch; 'dropped' only when the batch is at `maxQueue`. */
  record(r: RequestAuditRecord): 'written' | 'dropped' {
    let b = this.batch;
    if (b !== null && b.records >= this.maxQueue) {
      this.dropped++;
      this.droppedSinceFlush++;
      return 'dropped';
    }
    if (b === null) {
      b = this.open();
      this.timer = setTimeout(() => this.flush(), this.flushMs);
      this.timer.unref();
    }
    let end = writeAuditLine(r, b.bytes, b.used);
    if (end < 0) {
      this.grow(b, auditLineRoom(r));
      end = writeAuditLine(r, b.bytes, b.used);
    }
    b.used = end;
    b.records++;
    // A request that failed authorization also counts in the failed table: kept apart from an
    // allowed one with the same key.
    const s = cachedSummaryOf(r);
    const into = s.failed ? b.failedDeltas : b.deltas;
    const d = into.get(s.key);
    if (d === undefined) into.set(s.key, [s.key, s.entry, 1, s.failed]);
    else d[2]++;
    this.accepted++;
    if (b.records >= this.batchSize) this.flush();
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

  private open(): OpenBatch {
    const b: OpenBatch = {
      bytes: this.batchBuffer(this.batchSize * LINE_ESTIMATE),
      used: 0,
      records: 0,
      deltas: new Map(),
      failedDeltas: new Map(),
    };
    this.batch = b;
    return b;
  }

  /** Moves the batch into a buffer with room for `room` more bytes (a spare, or twice the size). */
  private grow(b: OpenBatch, room: number): void {
    const bigger = this.batchBuffer(Math.max(b.bytes.length * 2, b.used + room));
    b.bytes.copy(bigger, 0, 0, b.used);
    this.recycle(b.bytes.buffer as ArrayBuffer);
    b.bytes = bigger;
  }

  /** Hands over the open batch now (and the count of records dropped since the last one). */
  flush(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    // Records are dropped only while a batch is open (at maxQueue), so its hand-over carries them.
    const b = this.batch;
    if (b === null) return;
    this.batch = null;
    const dropped = this.droppedSinceFlush;
    this.droppedSinceFlush = 0;
    this.sink({
      bytes: b.bytes.subarray(0, b.used),
      records: b.records,
      summaries: [...b.deltas.values(), ...b.failedDeltas.values()],
      dropped,
    });
  }
}

/** The batch being filled: its buffer, how much is used, and its summary counts. */
interface OpenBatch {
  bytes: Buffer;
  used: number;
  records: number;
  deltas: Map<string, SummaryDelta>;
  failedDeltas: Map<string, SummaryDelta>;
}

/** What to transfer (not copy) when posting a batch to another thread: its own byte buffer. */
export function transferList(batch: AuditBatch): ArrayBuffer[] {
  return [batch.bytes.buffer as ArrayBuffer];
}
