import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { StatusDocument } from './status-document.js';

/**
 * Writes `file` atomically: a reader sees the old document or the new one, never a torn one. The
 * temp file lives in the same folder (rename is atomic only within a filesystem) and is fsynced
 * before the rename so a crash cannot leave an empty status.json behind.
 */
export function writeFileAtomic(file: string, content: string, mode = 0o644, dirMode = 0o755): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: dirMode });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

export interface StatusWriterOptions {
  /** Where status.json goes (normally `<logFolder>/status.json`). */
  file: string;
  /** Rewrite period; the spec says 60 s. */
  intervalMs?: number;
  /** Builds the current document. */
  collect: () => StatusDocument;
  /** Told about write failures (the writer keeps going). */
  onError?: (err: unknown) => void;
}

export interface StatusWriter {
  /** Writes now (also used at start-up and at shutdown). Returns false if the write failed. */
  writeNow(): boolean;
  stop(): void;
}

/** Starts the periodic status.json rewrite; the first write happens immediately. */
export function startStatusWriter(o: StatusWriterOptions): StatusWriter {
  const writeNow = (): boolean => {
    try {
      // The log folder it may create also holds the audit log: root only, as the audit log makes it.
      writeFileAtomic(o.file, `${JSON.stringify(o.collect(), null, 2)}\n`, 0o644, 0o700);
      return true;
    } catch (err) {
      o.onError?.(err);
      return false;
    }
  };
  writeNow();
  const timer = setInterval(writeNow, o.intervalMs ?? 60_000);
  timer.unref();
  return { writeNow, stop: () => clearInterval(timer) };
}
