import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import path from 'node:path';

/** File name of the audit (connection) log in the agent's log folder (host-protocol.md section 6). */
export const AUDIT_LOG_NAME = 'ProxyAgent.Connection.log';

/** The fields of an audit record the operator tools read (the data plane writes more). */
export interface AuditRecord {
  time: string;
  endpoint: string | null;
  method: string;
  target: string;
  outcome: string;
  code: string;
  status: number;
  ruleId?: string | null;
  privilege?: string | null;
  identity?: string | null;
  mode?: string | null;
  elapsedMs?: number;
  caller: {
    pid: number;
    uid: number;
    gid?: number;
    userName: string | null;
    groups?: { gid: number; name: string | null }[];
    exePath: string | null;
    processName?: string;
  } | null;
  comm?: string | null;
}

export interface AuditFilter {
  user?: string;
  uid?: number;
  exe?: string;
  decision?: string;
  endpoint?: string;
}

/** Current log first, then rotated ones newest first (`X.log.1`, `X.log.2`, ...). */
export function auditLogFiles(folderOrFile: string): string[] {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(folderOrFile);
  } catch {
    return [];
  }
  if (st.isFile()) return [folderOrFile];
  const names = readdirSync(folderOrFile).filter((n) => n.startsWith(AUDIT_LOG_NAME));
  const rank = (n: string) => {
    if (n === AUDIT_LOG_NAME) return 0;
    const m = /(\d+)/.exec(n.slice(AUDIT_LOG_NAME.length));
    return m ? Number(m[1]) : Number.MAX_SAFE_INTEGER;
  };
  return names.sort((a, b) => rank(a) - rank(b)).map((n) => path.join(folderOrFile, n));
}

/** Parses JSON lines; lines that are not a record (torn tail, garbage) are counted, not fatal. */
export function parseAuditLines(text: string): { records: AuditRecord[]; bad: number } {
  const records: AuditRecord[] = [];
  let bad = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const r = JSON.parse(line) as AuditRecord;
      if (typeof r === 'object' && r !== null && typeof r.method === 'string' && typeof r.target === 'string')
        records.push(r);
      else bad++;
    } catch {
      bad++;
    }
  }
  return { records, bad };
}

/** Reads every record from the current and rotated logs, oldest first. */
export function readAuditRecords(folderOrFile: string): { records: AuditRecord[]; bad: number; files: string[] } {
  const files = auditLogFiles(folderOrFile);
  const all: AuditRecord[] = [];
  let bad = 0;
  for (const f of [...files].reverse()) {
    const r = parseAuditLines(readFileSync(f, 'utf8'));
    all.push(...r.records);
    bad += r.bad;
  }
  return { records: all, bad, files };
}

/** True when the record passes every filter given. */
export function matchesAudit(r: AuditRecord, f: AuditFilter): boolean {
  if (f.user !== undefined && r.caller?.userName !== f.user) return false;
  if (f.uid !== undefined && r.caller?.uid !== f.uid) return false;
  if (f.exe !== undefined && r.caller?.exePath !== f.exe && path.basename(r.caller?.exePath ?? '') !== f.exe)
    return false;
  if (f.decision !== undefined && r.outcome !== f.decision) return false;
  if (f.endpoint !== undefined && r.endpoint !== f.endpoint) return false;
  return true;
}

/** Escapes control characters so caller-supplied text can never start a new output line. */
export function safeText(s: unknown, max = 120): string {
  const t = String(s ?? '-').replace(
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/** One human-readable line per record. */
export function formatAuditRecord(r: AuditRecord): string {
  const c = r.caller;
  const who = c
    ? `${safeText(c.userName ?? `uid ${c.uid}`, 32)}(${c.uid}) ${safeText(c.exePath ?? c.processName ?? r.comm, 60)} pid ${c.pid}`
    : `unattributed ${safeText(r.comm ?? '', 20)}`;
  const rule = r.ruleId ? ` rule ${safeText(r.ruleId, 40)}` : '';
  const priv = r.privilege ? ` privilege ${safeText(r.privilege, 40)}` : '';
  return `${safeText(r.time, 30)}  ${safeText(r.outcome, 10).padEnd(10)} ${String(r.status).padStart(3)}  ${safeText(r.endpoint ?? '-', 10).padEnd(10)} ${safeText(r.method, 8)} ${safeText(r.target)}  ${who}  [${safeText(r.code, 40)}${rule}${priv}]`;
}

/**
 * Follows a log file from `offset`, calling `onText` with new complete text; handles rotation (the file
 * shrinking or being replaced) by starting again at 0. Returns a stop function.
 */
export function followFile(file: string, offset: number, onText: (text: string) => void, pollMs = 500): () => void {
  let pos = offset;
  let ino = -1;
  let carry = '';
  const tick = () => {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(file);
    } catch {
      return;
    }
    if ((ino !== -1 && st.ino !== ino) || st.size < pos) pos = 0;
    ino = st.ino;
    if (st.size <= pos) return;
    const fd = openSync(file, 'r');
    try {
      const buf = Buffer.alloc(Math.min(st.size - pos, 4 * 1024 * 1024));
      const n = readSync(fd, buf, 0, buf.length, pos);
      pos += n;
      const text = carry + buf.subarray(0, n).toString('utf8');
      const cut = text.lastIndexOf('\n');
      carry = cut === -1 ? text : text.slice(cut + 1);
      if (cut !== -1) onText(text.slice(0, cut + 1));
    } finally {
      closeSync(fd);
    }
  };
  const timer = setInterval(tick, pollMs);
  return () => clearInterval(timer);
}
