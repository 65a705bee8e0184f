import { redactCmdline } from '../identity/index.js';
import type { CallerClaims, RequestAuditRecord } from '../proxy/index.js';

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

const str = JSON.stringify;

// Every request of a connection carries the same claims object: its JSON is built once.
const callerJson = new WeakMap<CallerClaims, string>();

function callerText(c: CallerClaims | null): string {
  if (c === null) return 'null';
  let t = callerJson.get(c);
  if (t === undefined) {
    t = str({
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
    callerJson.set(c, t);
  }
  return t;
}

// Metadata clients repeat the same few targets; redacting a query runs several regular expressions.
const redactedTargets = new Map<string, string>();
const MAX_CACHED_TARGETS = 512;

function targetText(target: string): string {
  if (!target.includes('?')) return str(target);
  let t = redactedTargets.get(target);
  if (t === undefined) {
    t = str(redactCmdline(target));
    if (redactedTargets.size >= MAX_CACHED_TARGETS) redactedTargets.clear();
    redactedTargets.set(target, t);
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
 * One audit record as one JSON line. Every string goes through JSON.stringify, which escapes every
 * control character, so a process name or path holding a newline and fake JSON stays inside its
 * string and cannot forge a record. Keys and signatures never reach this record: it is built from
 * claims and the decision only. Built by concatenation with the per-connection caller JSON cached:
 * this runs once per request (in batches, off the response path).
 */
export function formatAuditLine(r: RequestAuditRecord): string {
  return (
    '{"time":' +
    timeText(r.timeMs) +
    ',"connectionId":' +
    str(r.connectionId) +
    ',"requestId":' +
    str(r.requestId) +
    ',"caller":' +
    callerText(r.caller) +
    ',"comm":' +
    str(r.comm) +
    ',"origDst":' +
    str(r.origDst) +
    ',"endpoint":' +
    str(r.endpoint) +
    ',"method":' +
    str(r.method) +
    ',"target":' +
    targetText(r.target) +
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
    str(r.mode) +
    ',"policyEpoch":' +
    str(r.policyEpoch) +
    ',"status":' +
    str(r.status) +
    ',"elapsedMs":' +
    str(round3(r.elapsedMs)) +
    ',"upstreamMs":' +
    (r.upstreamMs === null ? 'null' : str(round3(r.upstreamMs))) +
    ',"signed":' +
    str(r.signed) +
    '}\n'
  );
}
