import { Buffer } from 'node:buffer';
import { MAX_CMDLINE, redactCmdline } from '../identity/index.js';
import type { CallerClaims, RequestAuditRecord } from '../proxy/index.js';

// A request's line is mostly text that does not change from request to request: the caller, comm,
// destination and endpoint are the connection's, and outcome ... mode are the decision's. Those
// pieces are cached as finished JSON bytes, so a request adds only its time, ids, status and
// durations, written as digits, and copies the rest.
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

/** A piece of a line as bytes: every piece is ASCII (see asciiJson), so latin1 is its encoding. */
function bytesOf(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

/** `,"caller":…,"comm":…,"origDst":…,"endpoint":…` of one connection. */
interface ConnectionText {
  comm: string | null;
  origDst: string | null;
  endpoint: string | null;
  bytes: Buffer;
}

// Every request of a connection carries the same claims object (and the connection's comm,
// destination and endpoint): the piece is built once per claims object and destination.
const connectionTexts = new WeakMap<CallerClaims, ConnectionText>();

function connectionBytes(r: RequestAuditRecord): Buffer {
  const c = r.caller;
  const hit = c === null ? undefined : connectionTexts.get(c);
  if (hit !== undefined && hit.comm === r.comm && hit.origDst === r.origDst && hit.endpoint === r.endpoint)
    return hit.bytes;
  const bytes = bytesOf(
    ',"caller":' +
      callerText(c) +
      ',"comm":' +
      str(r.comm) +
      ',"origDst":' +
      str(r.origDst) +
      ',"endpoint":' +
      str(r.endpoint),
  );
  if (c !== null) connectionTexts.set(c, { comm: r.comm, origDst: r.origDst, endpoint: r.endpoint, bytes });
  return bytes;
}

/** The decision's fields of a record, as one piece. */
type DecisionFields = Pick<RequestAuditRecord, 'outcome' | 'code' | 'ruleId' | 'privilege' | 'identity' | 'mode'>;

// A policy yields a handful of distinct decisions; the last few pieces are kept and found by
// comparing the six fields (usually the very same strings, so the comparisons are pointer checks).
const recentDecisions: (DecisionFields & { bytes: Buffer })[] = [];
const RECENT_DECISIONS_MAX = 8;

function decisionBytes(r: RequestAuditRecord): Buffer {
  for (const d of recentDecisions) {
    if (
      d.outcome === r.outcome &&
      d.code === r.code &&
      d.ruleId === r.ruleId &&
      d.privilege === r.privilege &&
      d.identity === r.identity &&
      d.mode === r.mode
    )
      return d.bytes;
  }
  const bytes = bytesOf(
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
    bytes,
  });
  return bytes;
}

// Metadata clients repeat the same few targets; redacting a query runs several regular expressions.
const targetTexts = new Map<string, Buffer>();
const MAX_CACHED_TARGETS = 512;
const MAX_CACHED_TARGET_LENGTH = 1024;

function targetBytes(target: string): Buffer {
  let t = targetTexts.get(target);
  if (t === undefined) {
    // A query may hold secrets (redactCmdline also cuts at MAX_CMDLINE); a path is only cut, so a
    // record never carries the 8 KiB a target may have.
    t = bytesOf(
      str(
        target.includes('?')
          ? redactCmdline(target)
          : target.length > MAX_CMDLINE
            ? target.slice(0, MAX_CMDLINE) + '…'
            : target,
      ),
    );
    if (target.length > MAX_CACHED_TARGET_LENGTH) return t;
    if (targetTexts.size >= MAX_CACHED_TARGETS) targetTexts.clear();
    targetTexts.set(target, t);
  }
  return t;
}

const methodTexts = new Map<string, Buffer>();

function methodBytes(method: string): Buffer {
  let t = methodTexts.get(method);
  if (t === undefined) {
    t = bytesOf(str(method));
    // Methods are tokens the parser accepted; still, bound the cache against a hostile variety.
    if (methodTexts.size < 64) methodTexts.set(method, t);
  }
  return t;
}

// The time: `"YYYY-MM-DDTHH:mm:ss.sssZ"`. The part up to the seconds is made once a second; the
// milliseconds are written as digits.
let secondStart = Number.NaN;
let secondBytes: Buffer = Buffer.alloc(0);

/** Writes the time as a JSON string at `at`; returns the end. */
function writeTime(ms: number, out: Buffer, at: number): number {
  const second = Math.floor(ms / 1000) * 1000;
  if (second !== secondStart) {
    const iso = new Date(second).toISOString();
    // Years 0-9999 only have the fixed form; the odd other time is written whole.
    if (iso.length !== 24 || !Number.isInteger(ms))
      return at + out.write(str(new Date(ms).toISOString()), at, 'latin1');
    secondStart = second;
    secondBytes = bytesOf('"' + iso.slice(0, 20)); // `"YYYY-MM-DDTHH:mm:ss.`
  }
  at += secondBytes.copy(out, at);
  const milli = ms - second;
  out[at] = 48 + Math.floor(milli / 100);
  out[at + 1] = 48 + (Math.floor(milli / 10) % 10);
  out[at + 2] = 48 + (milli % 10);
  out[at + 3] = 90; // Z
  out[at + 4] = 34; // "
  return at + 5;
}

/** Writes the decimal digits of a non-negative safe integer; returns the end. */
function writeDigits(n: number, out: Buffer, at: number): number {
  let digits = 1;
  for (let p = 10; p <= n; p *= 10) digits++;
  const end = at + digits;
  for (let i = end - 1; i >= at; i--) {
    out[i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  return end;
}

/** Writes a number as JSON.stringify does; returns the end. */
function writeNumber(n: number, out: Buffer, at: number): number {
  if (Number.isSafeInteger(n) && n >= 0) return writeDigits(n, out, at);
  return at + out.write(num(n), at, 'latin1');
}

/** Writes a duration in ms as `num(round3(ms))` would; returns the end. */
function writeMs(ms: number, out: Buffer, at: number): number {
  if (!(ms >= 0 && ms < 1e9)) return at + out.write(num(round3(ms)), at, 'latin1');
  const k = Math.round(ms * 1000);
  const frac = k % 1000;
  at = writeDigits((k - frac) / 1000, out, at);
  if (frac === 0) return at;
  out[at++] = 46; // .
  out[at++] = 48 + Math.floor(frac / 100);
  if (frac % 100 === 0) return at;
  out[at++] = 48 + (Math.floor(frac / 10) % 10);
  if (frac % 10 === 0) return at;
  out[at++] = 48 + (frac % 10);
  return at;
}

const TIME_KEY = bytesOf('{"time":');
const CONNECTION_ID_KEY = bytesOf(',"connectionId":');
const REQUEST_ID_KEY = bytesOf(',"requestId":');
const METHOD_KEY = bytesOf(',"method":');
const TARGET_KEY = bytesOf(',"target":');
const POLICY_EPOCH_KEY = bytesOf(',"policyEpoch":');
const STATUS_KEY = bytesOf(',"status":');
const ELAPSED_KEY = bytesOf(',"elapsedMs":');
const UPSTREAM_KEY = bytesOf(',"upstreamMs":');
const NULL_VALUE = bytesOf('null');
const SIGNED_END = bytesOf(',"signed":true}\n');
const UNSIGNED_END = bytesOf(',"signed":false}\n');
/** Room for the keys (126 bytes), the time (at most 30) and six numbers (at most 32 each), with margin. */
const FIXED_ROOM = 512;

/**
 * Writes one audit record as one JSON line of ASCII bytes into `out` at `at`, and returns where it
 * ends; -1, with nothing written, when `out` has less than `auditLineRoom(r)` bytes from `at`.
 * Field order: time, connectionId, requestId, caller, comm, origDst, endpoint, method, target,
 * outcome, code, ruleId, privilege, identity, mode, policyEpoch, status, elapsedMs, upstreamMs,
 * signed. Straight into the batch's buffer: no string per line, no copy of one. Runs once per
 * request, after its response went out.
 */
export function writeAuditLine(r: RequestAuditRecord, out: Buffer, at: number): number {
  const p = piecesOf(r);
  if (at + roomFor(p) > out.length) return -1;
  const { connection, method, target, decision } = p;
  at += TIME_KEY.copy(out, at);
  at = writeTime(r.timeMs, out, at);
  at += CONNECTION_ID_KEY.copy(out, at);
  at = writeNumber(r.connectionId, out, at);
  at += REQUEST_ID_KEY.copy(out, at);
  at = writeNumber(r.requestId, out, at);
  at += connection.copy(out, at);
  at += METHOD_KEY.copy(out, at);
  at += method.copy(out, at);
  at += TARGET_KEY.copy(out, at);
  at += target.copy(out, at);
  at += decision.copy(out, at);
  at += POLICY_EPOCH_KEY.copy(out, at);
  at = writeNumber(r.policyEpoch, out, at);
  at += STATUS_KEY.copy(out, at);
  at = writeNumber(r.status, out, at);
  at += ELAPSED_KEY.copy(out, at);
  at = writeMs(r.elapsedMs, out, at);
  at += UPSTREAM_KEY.copy(out, at);
  at = r.upstreamMs === null ? at + NULL_VALUE.copy(out, at) : writeMs(r.upstreamMs, out, at);
  at += (r.signed ? SIGNED_END : UNSIGNED_END).copy(out, at);
  return at;
}

/** The most bytes `writeAuditLine` may need for this record. */
export function auditLineRoom(r: RequestAuditRecord): number {
  return roomFor(piecesOf(r));
}

/** A record's cached pieces: one object, refilled for each line (nothing allocated per line). */
const pieces = { connection: NULL_VALUE, method: NULL_VALUE, target: NULL_VALUE, decision: NULL_VALUE };

function piecesOf(r: RequestAuditRecord): typeof pieces {
  pieces.connection = connectionBytes(r);
  pieces.method = methodBytes(r.method);
  pieces.target = targetBytes(r.target);
  pieces.decision = decisionBytes(r);
  return pieces;
}

function roomFor(p: typeof pieces): number {
  return FIXED_ROOM + p.connection.length + p.method.length + p.target.length + p.decision.length;
}

let scratch = Buffer.allocUnsafeSlow(4096);

/** One audit record as one JSON line of ASCII text (what `writeAuditLine` writes, as a string). */
export function formatAuditLine(r: RequestAuditRecord): string {
  const room = auditLineRoom(r);
  if (scratch.length < room) scratch = Buffer.allocUnsafeSlow(room);
  return scratch.toString('latin1', 0, writeAuditLine(r, scratch, 0));
}
