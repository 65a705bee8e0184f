import { redactCmdline } from '../identity/index.js';
import type { RequestAuditRecord } from '../proxy/index.js';

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/**
 * One audit record as one JSON line. JSON.stringify escapes every control character, so a process
 * name or path holding a newline and fake JSON stays inside its string and cannot forge a record.
 * Keys and signatures never reach this record: it is built from claims and the decision only.
 */
export function formatAuditLine(r: RequestAuditRecord): string {
  const c = r.caller;
  const target = r.target.includes('?') ? redactCmdline(r.target) : r.target;
  return (
    JSON.stringify({
      time: new Date(r.timeMs).toISOString(),
      connectionId: r.connectionId,
      requestId: r.requestId,
      caller:
        c === null
          ? null
          : {
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
            },
      comm: r.comm,
      origDst: r.origDst,
      endpoint: r.endpoint,
      method: r.method,
      target,
      outcome: r.outcome,
      code: r.code,
      ruleId: r.ruleId,
      privilege: r.privilege,
      identity: r.identity,
      mode: r.mode,
      policyEpoch: r.policyEpoch,
      status: r.status,
      elapsedMs: round3(r.elapsedMs),
      upstreamMs: r.upstreamMs === null ? null : round3(r.upstreamMs),
      signed: r.signed,
    }) + '\n'
  );
}
