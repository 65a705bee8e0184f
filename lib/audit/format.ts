import { MAX_CMDLINE, redactCmdline } from '../identity/index.js';
import type { CallerClaims, RequestAuditRecord } from '../proxy/index.js';

// A request's line is mostly text that does not change from request to request: the caller, comm,
// destination and endpoint are the connection's, and outcome ... mode are the decision's. Those
// pieces are cached as finished JSON, so a request adds only its time, ids, method, target, status
// and durations.
//
// Every string goes through JSON.stringify, which escapes every control character: a process name
// holding a newline and fake JSON stays inside its string and cannot forge a record. Non-ASCII
// characters are then escaped as \uXXXX (the same value to any JSON reader), so a line is pure
// ASCII: its bytes are its latin1 code units, one copy with no UTF-8 encoding pass, and identical
// to its UTF-8. Keys and signatures never reach a record: it is built from claims and the decision.

const NON_ASCII = /[^\x00-\x7f]/;
const NON_ASCII_ALL = /[^\x00-\x7f]/g;

function escapeUnit(c: string): string {
  return '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');
}

/** JSON text with every non-ASCII UTF-16 unit written as \uXXXX (only string literals can hold one). */
export function asciiJson(json: string): string {
  return NON_ASCII.test(json) ? json.replace(NON_ASCII_ALL, escapeUnit) : json;
}

const str = (v: unknown): string => asciiJson(JSON.stringify(v));

/** JSON.stringify of a number (null for NaN and the infinities). */
function num(n: number): string {
  return Number.isFinite(n) ? '' + n : 'null';
}

/**
 * The same string, flat: V8 keeps a concatenation as a tree of its parts and would walk that tree
 * every time a line containing a cached piece is copied out. A numeric conversion flattens it in
 * place, once.
 */
function flat(s: string): string {
  Number(s);
  return s;
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

function callerText(c: CallerClaims | null): string {
  if (c === null) return 'null';
  return str({
    pid: c.pid,
    uid: c.uid,
    gid: c.gid,
    userName: c.userName,
    groups: c.groups,
    exePath: c.exePath,
    processName: c.processName,
    cmdline: c.cmdline,
    cgroupId: String(c.cgroupId),
    containerId: (c as { containerId?: string | null }).containerId ?? null,
  });
}

/** `,"caller":…,"comm":…,"origDst":…,"endpoint":…` of one connection. */
interface ConnectionText {
  comm: string | null;
  origDst: string | null;
  endpoint: string | null;
  text: string;
}

// Every request of a connection carries the same claims object (and the connection's comm,
// destination and endpoint): the piece is built once per claims object and destination.
const connectionTexts = new WeakMap<CallerClaims, ConnectionText>();

function connectionText(r: RequestAuditRecord): string {
  const c = r.caller;
  const hit = c === null ? undefined : connectionTexts.get(c);
  if (hit !== undefined && hit.comm === r.comm && hit.origDst === r.origDst && hit.endpoint === r.endpoint)
    return hit.text;
  const text = flat(
    ',"caller":' +
      callerText(c) +
      ',"comm":' +
      str(r.comm) +
      ',"origDst":' +
      str(r.origDst) +
      ',"endpoint":' +
      str(r.endpoint),
  );
  if (c !== null) connectionTexts.set(c, { comm: r.comm, origDst: r.origDst, endpoint: r.endpoint, text });
  return text;
}

/** The decision's fields of a record, as one piece. */
type DecisionFields = Pick<RequestAuditRecord, 'outcome' | 'code' | 'ruleId' | 'privilege' | 'identity' | 'mode'>;

// A policy yields a handful of distinct decisions; the last few pieces are kept and found by
// comparing the six fields (usually the very same strings, so the comparisons are pointer checks).
const recentDecisions: (DecisionFields & { text: string })[] = [];
const RECENT_DECISIONS_MAX = 8;

function decisionText(r: RequestAuditRecord): string {
  for (const d of recentDecisions) {
    if (
      d.outcome === r.outcome &&
      d.code === r.code &&
      d.ruleId === r.ruleId &&
      d.privilege === r.privilege &&
      d.identity === r.identity &&
      d.mode === r.mode
    )
      return d.text;
  }
  const text = flat(
    ',"outcome":' +
      str(r.outcome) +
      ',"code":' +
      str(r.code) +
      ',"ruleId":' +
      str(r.ruleId) +
      ',"privilege":' +
      str(r.privilege) +
      ',"identity":' +
      str(r.identity) +
      ',"mode":' +
      str(r.mode),
  );
  if (recentDecisions.length >= RECENT_DECISIONS_MAX) recentDecisions.pop();
  recentDecisions.unshift({
    outcome: r.outcome,
    code: r.code,
    ruleId: r.ruleId,
    privilege: r.privilege,
    identity: r.identity,
    mode: r.mode,
    text,
  });
  return text;
}

// Metadata clients repeat the same few targets; redacting a query runs several regular expressions.
const targetTexts = new Map<string, string>();
const MAX_CACHED_TARGETS = 512;
const MAX_CACHED_TARGET_LENGTH = 1024;

function targetText(target: string): string {
  let t = targetTexts.get(target);
  if (t === undefined) {
    // A query may hold secrets (redactCmdline also cuts at MAX_CMDLINE); a path is only cut, so a
    // record never carries the 8 KiB a target may have.
    t = str(
      target.includes('?')
        ? redactCmdline(target)
        : target.length > MAX_CMDLINE
          ? target.slice(0, MAX_CMDLINE) + '…'
          : target,
    );
    if (target.length > MAX_CACHED_TARGET_LENGTH) return t;
    if (targetTexts.size >= MAX_CACHED_TARGETS) targetTexts.clear();
    targetTexts.set(target, t);
  }
  return t;
}

const methodTexts = new Map<string, string>();

function methodText(method: string): string {
  let t = methodTexts.get(method);
  if (t === undefined) {
    t = str(method);
    // Methods are tokens the parser accepted; still, bound the cache against a hostile variety.
    if (methodTexts.size < 64) methodTexts.set(method, t);
  }
  return t;
}

let lastMs = Number.NaN;
let lastIso = '';

function timeText(ms: number): string {
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = str(new Date(ms).toISOString());
  }
  return lastIso;
}

/**
 * One audit record as one JSON line of ASCII text. Field order: time, connectionId, requestId,
 * caller, comm, origDst, endpoint, method, target, outcome, code, ruleId, privilege, identity, mode,
 * policyEpoch, status, elapsedMs, upstreamMs, signed. Runs once per request, in batches, off the
 * response path.
 */
export function formatAuditLine(r: RequestAuditRecord): string {
  return (
    '{"time":' +
    timeText(r.timeMs) +
    ',"connectionId":' +
    num(r.connectionId) +
    ',"requestId":' +
    num(r.requestId) +
    connectionText(r) +
    ',"method":' +
    methodText(r.method) +
    ',"target":' +
    targetText(r.target) +
    decisionText(r) +
    ',"policyEpoch":' +
    num(r.policyEpoch) +
    ',"status":' +
    num(r.status) +
    ',"elapsedMs":' +
    num(round3(r.elapsedMs)) +
    ',"upstreamMs":' +
    (r.upstreamMs === null ? 'null' : num(round3(r.upstreamMs))) +
    ',"signed":' +
    (r.signed ? 'true' : 'false') +
    '}\n'
  );
}
