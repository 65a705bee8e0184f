import type { RequestAuditRecord } from '../proxy/index.js';

/** One summary row (the status.json ConnectionSummaryEntry shape). */
export interface SummaryEntry {
  userName: string;
  userGroups: string[] | null;
  ip: string;
  port: number;
  processFullPath: string | null;
  processCmdLine: string;
  responseStatus: string;
  count: number;
}

/** A summary key and how many requests it counted (what a worker posts to the main thread). */
export type SummaryDelta = [key: string, entry: Omit<SummaryEntry, 'count'>, count: number, failed: boolean];

const BUCKET_MS = 15 * 60 * 1000;
const KEEP_MS = 4 * 60 * 60 * 1000;
// A caller controls its summary key (a process may rewrite its command line, fork at will): a bucket
// keeps this many keys (the rest are counted in one overflow row), and status.json gets the rows
// with the highest counts, the rest summed in one row, so neither memory nor the document (written
// every minute and posted to every worker) grows with what a caller does.
const MAX_KEYS_PER_BUCKET = 256;
export const MAX_SUMMARY_ROWS = 100;

/** The summary key and row of one request. */
export function summaryOf(r: RequestAuditRecord): { key: string; entry: Omit<SummaryEntry, 'count'>; failed: boolean } {
  const c = r.caller;
  const [ip = '', portText = '0'] = (r.origDst ?? '').split(':');
  const entry = {
    userName: c?.userName ?? (c !== null ? String(c.uid) : 'unattributed'),
    userGroups: c !== null ? c.groups.map((g) => g.name ?? String(g.gid)) : null,
    ip,
    port: Number(portText) || 0,
    processFullPath: c?.exePath ?? r.comm,
    processCmdLine: c?.cmdline ?? '',
    responseStatus: String(r.status),
  };
  const key = [
    entry.userName,
    entry.ip,
    entry.port,
    entry.processFullPath,
    entry.processCmdLine,
    entry.responseStatus,
  ].join('\u0000');
  return { key, entry, failed: r.outcome === 'deny' || r.outcome === 'audit-deny' };
}

type Summary = ReturnType<typeof summaryOf>;

// The summary of a request depends on its claims object, destination, comm, status and whether it
// failed; a connection repeats them request after request. The last few per claims object are kept
// so a batch builds (and hashes) each ~200-character key once, not once per request.
type SummaryInputs = Pick<RequestAuditRecord, 'status' | 'origDst' | 'comm' | 'outcome'>;
const recentSummaries = new WeakMap<object, { r: SummaryInputs; s: Summary }[]>();
const RECENT_SUMMARIES_MAX = 8;

/** summaryOf, reusing the answer for an earlier record of the same claims object with the same inputs. */
export function cachedSummaryOf(r: RequestAuditRecord): Summary {
  const c = r.caller;
  if (c === null) return summaryOf(r);
  let list = recentSummaries.get(c);
  if (list !== undefined) {
    for (const e of list) {
      const p = e.r;
      if (p.status === r.status && p.origDst === r.origDst && p.comm === r.comm && p.outcome === r.outcome) return e.s;
    }
  } else {
    list = [];
    recentSummaries.set(c, list);
  }
  const s = summaryOf(r);
  if (list.length >= RECENT_SUMMARIES_MAX) list.pop();
  list.unshift({ r: { status: r.status, origDst: r.origDst, comm: r.comm, outcome: r.outcome }, s });
  return s;
}

/**
 * Connection summaries in 15-minute buckets kept for 4 hours, and a separate table of failed
 * authorizations (deny and audit-deny), for status.json. Rows are keyed by user, client address,
 * destination, exe, cmdline and status; a bucket holds at most a bounded number of keys (the rest
 * are counted under one overflow row) so a hostile caller cannot grow memory.
 */
export class ConnectionSummaries {
  private readonly all = new Map<number, Map<string, SummaryEntry>>();
  private readonly failed = new Map<number, Map<string, SummaryEntry>>();

  constructor(private readonly now: () => number = Date.now) {}

  add(deltas: SummaryDelta[]): void {
    const bucket = Math.floor(this.now() / BUCKET_MS) * BUCKET_MS;
    for (const [key, entry, count, failed] of deltas) {
      bump(this.all, bucket, key, entry, count);
      if (failed) bump(this.failed, bucket, key, entry, count);
    }
    this.expire(bucket);
  }

  /** Rows summed over the buckets still kept. */
  connectionSummary(): SummaryEntry[] {
    this.expire(Math.floor(this.now() / BUCKET_MS) * BUCKET_MS);
    return merge(this.all);
  }

  failedAuthenticateSummary(): SummaryEntry[] {
    this.expire(Math.floor(this.now() / BUCKET_MS) * BUCKET_MS);
    return merge(this.failed);
  }

  /** Bucket start times currently kept (for tests and diagnostics). */
  bucketStarts(): number[] {
    return [...this.all.keys()].sort((a, b) => a - b);
  }

  private expire(current: number): void {
    for (const m of [this.all, this.failed]) for (const b of m.keys()) if (b <= current - KEEP_MS) m.delete(b);
  }
}

function bump(
  table: Map<number, Map<string, SummaryEntry>>,
  bucket: number,
  key: string,
  entry: Omit<SummaryEntry, 'count'>,
  count: number,
): void {
  let rows = table.get(bucket);
  if (rows === undefined) table.set(bucket, (rows = new Map()));
  let row = rows.get(key);
  if (row === undefined) {
    if (rows.size >= MAX_KEYS_PER_BUCKET) {
      key = 'overflow';
      row = rows.get(key);
      if (row === undefined) {
        row = {
          ...entry,
          userName: '(other)',
          processFullPath: null,
          processCmdLine: '',
          responseStatus: '',
          count: 0,
        };
        rows.set(key, row);
      }
    } else {
      row = { ...entry, count: 0 };
      rows.set(key, row);
    }
  }
  row.count += count;
}

function merge(table: Map<number, Map<string, SummaryEntry>>): SummaryEntry[] {
  const out = new Map<string, SummaryEntry>();
  for (const rows of table.values()) {
    for (const [key, row] of rows) {
      const have = out.get(key);
      if (have === undefined) out.set(key, { ...row });
      else have.count += row.count;
    }
  }
  const rows = [...out.values()].sort((a, b) => b.count - a.count);
  if (rows.length <= MAX_SUMMARY_ROWS) return rows;
  const kept = rows.slice(0, MAX_SUMMARY_ROWS - 1);
  const rest = rows.slice(MAX_SUMMARY_ROWS - 1);
  kept.push({
    userName: '(other)',
    userGroups: null,
    ip: '',
    port: 0,
    processFullPath: null,
    processCmdLine: '',
    responseStatus: '',
    count: rest.reduce((n, r) => n + r.count, 0),
  });
  return kept;
}
