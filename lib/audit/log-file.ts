import { type FileHandle, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { AuditBatch } from './batcher.js';
import { ConnectionSummaries } from './summaries.js';

/** File name of the audit (connection) log (spec section 6). */
export const AUDIT_LOG_NAME = 'ProxyAgent.Connection.log';

export interface AuditLogOptions {
  folder: string;
  /** Rotate when the current file would pass this size. */
  maxBytes?: number;
  /** Rotated files kept (`.1` newest … `.N` oldest). */
  maxFiles?: number;
  /** Bytes waiting for the disk before whole batches are dropped and counted. */
  maxBacklogBytes?: number;
  /** Writes started failing (with the error) or work again (null). */
  onHealthChange?: (error: string | null) => void;
}

/**
 * The audit log file, owned by one thread (the main thread): appends batches of lines with one
 * write each, rotates by size keeping a bounded number of files, counts what it wrote and dropped,
 * and keeps the connection summaries. Writes are serialised through one promise chain, so lines
 * never interleave and `flush()` waits for everything handed over so far.
 */
export class AuditLog {
  readonly file: string;
  readonly summaries = new ConnectionSummaries();
  /** Records on disk, and records lost (queue or backlog full, write failed), since start. */
  written = 0;
  dropped = 0;
  lastError: string | null = null;
  /** False from a failed write until the next write that succeeds. */
  healthy = true;
  private handle: FileHandle | null = null;
  private size = 0;
  private backlog = 0;
  private chain: Promise<void> = Promise.resolve();
  private readonly maxBytes: number;
  private readonly maxFiles: number;
  private readonly maxBacklog: number;

  constructor(private readonly opts: AuditLogOptions) {
    this.file = path.join(opts.folder, AUDIT_LOG_NAME);
    this.maxBytes = opts.maxBytes ?? 20 * 1024 * 1024;
    this.maxFiles = opts.maxFiles ?? 5;
    this.maxBacklog = opts.maxBacklogBytes ?? 64 * 1024 * 1024;
  }

  /**
   * Accepts a batch from any thread's batcher. `done` gets the batch's buffer back once its bytes
   * are written or dropped (to recycle it: see AuditBatcher.recycle).
   */
  append(batch: AuditBatch, done?: (buffer: ArrayBuffer) => void): void {
    this.dropped += batch.dropped;
    this.summaries.add(batch.summaries);
    const buffer = batch.bytes.buffer as ArrayBuffer;
    if (batch.records === 0) {
      done?.(buffer);
      return;
    }
    const bytes = batch.bytes.byteLength;
    if (this.backlog + bytes > this.maxBacklog) {
      this.dropped += batch.records;
      done?.(buffer);
      return;
    }
    this.backlog += bytes;
    // Bytes outside the JS heap while the write is pending (a view, not a copy).
    const data = Buffer.from(buffer, batch.bytes.byteOffset, bytes);
    this.chain = this.chain.then(async () => {
      await this.writeBatch(data, bytes, batch.records);
      done?.(buffer);
    });
  }

  /** Resolves once every batch handed over so far is on disk (or counted as dropped). */
  flush(): Promise<void> {
    return this.chain;
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    await this.flush();
    await this.handle?.close();
    this.handle = null;
  }

  private async writeBatch(data: Buffer, bytes: number, records: number): Promise<void> {
    try {
      if (this.handle === null) await this.openFile();
      if (this.size > 0 && this.size + bytes > this.maxBytes) await this.rotate();
      await this.handle!.write(data);
      this.size += bytes;
      this.written += records;
      if (!this.healthy) {
        this.healthy = true;
        this.opts.onHealthChange?.(null);
      }
    } catch (err) {
      this.dropped += records;
      this.lastError = `cannot write ${this.file}: ${(err as Error).message}; check the logFolder setting and disk space`;
      await this.handle?.close().catch(() => {});
      this.handle = null;
      if (this.healthy) {
        this.healthy = false;
        this.opts.onHealthChange?.(this.lastError);
      }
    } finally {
      this.backlog -= bytes;
    }
  }

  private async openFile(): Promise<void> {
    await mkdir(this.opts.folder, { recursive: true, mode: 0o700 });
    this.handle = await open(this.file, 'a', 0o600);
    this.size = (await stat(this.file)).size;
  }

  private async rotate(): Promise<void> {
    await this.handle?.close();
    this.handle = null;
    await rm(`${this.file}.${this.maxFiles}`, { force: true });
    for (let i = this.maxFiles - 1; i >= 1; i--) {
      await rename(`${this.file}.${i}`, `${this.file}.${i + 1}`).catch(() => {});
    }
    await rename(this.file, `${this.file}.1`).catch(() => {});
    await this.openFile();
  }
}
