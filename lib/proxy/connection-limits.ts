/**
 * How many client connections one worker holds at once, in total and per caller. Every connection
 * costs a descriptor (two while forwarding), and a process out of descriptors can neither accept
 * nor reach the host: without a limit, one local user holding connections open would deny every
 * other caller, root included. So:
 *
 * - each uid other than root has its own share (`perUser`); connections that could not be
 *   attributed share one more such share between them;
 * - all non-root callers together hold at most three quarters of `total`, so root always finds room;
 * - root is bounded by `total` alone.
 *
 * A connection over its limit is answered 503 and closed at once (not audited: a flood of refused
 * connections must not flush the audit log either); the metrics count it.
 */
export interface ConnectionLimits {
  total: number;
  perUser: number;
}

/** The uid under which unattributed connections are counted. */
export const UNATTRIBUTED_UID = -1;

export class ConnectionCounter {
  private readonly byUid = new Map<number, number>();
  private all = 0;
  private nonRoot = 0;

  constructor(readonly limits: ConnectionLimits) {}

  /** Takes a place for a connection of `uid`; false when it is over a limit (nothing taken). */
  take(uid: number): boolean {
    const l = this.limits;
    if (this.all >= l.total) return false;
    if (uid !== 0) {
      if (this.nonRoot >= Math.floor((l.total * 3) / 4)) return false;
      if ((this.byUid.get(uid) ?? 0) >= l.perUser) return false;
      this.nonRoot++;
    }
    this.byUid.set(uid, (this.byUid.get(uid) ?? 0) + 1);
    this.all++;
    return true;
  }

  /** Gives back the place of a connection of `uid` that was taken. */
  release(uid: number): void {
    const n = this.byUid.get(uid) ?? 0;
    if (n <= 0) return;
    if (n === 1) this.byUid.delete(uid);
    else this.byUid.set(uid, n - 1);
    this.all--;
    if (uid !== 0) this.nonRoot--;
  }

  get open(): number {
    return this.all;
  }
}

/** The soft limit on open files of this process (Linux), or null when it cannot be read. */
export function openFilesLimit(readLimits: () => string | null): number | null {
  const text = readLimits();
  if (text === null) return null;
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(text);
  if (m === null) return null;
  return m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
}

/**
 * Default limits for the whole agent from the open-files limit: half of what is left after a
 * reserve for the agent's own files and upstream connections (each client connection may hold an
 * upstream one), at most 16384; a user's share an eighth of that, at least 64. Without such a
 * limit (Windows: handles are not counted that way), 4096 and 512.
 */
export function defaultConnectionLimits(openFiles: number | null): ConnectionLimits {
  const files = openFiles ?? 8704;
  const total = Math.max(64, Math.min(16384, Math.floor((files - 512) / 2)));
  return { total, perUser: Math.max(64, Math.floor(total / 8)) };
}

/**
 * One worker's share of the agent's limits (connections spread over the workers by the kernel),
 * rounded up: never more than one connection per worker above what the operator set.
 */
export function perWorker(limits: ConnectionLimits, workers: number): ConnectionLimits {
  const n = Math.max(1, workers);
  return { total: Math.ceil(limits.total / n), perUser: Math.ceil(limits.perUser / n) };
}
