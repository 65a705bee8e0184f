/** Audit records shaped like the data plane's RequestAuditRecord, for the operator-tool tests. */
export interface FixtureCaller {
  uid: number;
  userName: string | null;
  exePath: string;
  processName?: string;
}

let seq = 0;

export function auditRecord(
  endpoint: 'imds' | 'wireserver' | 'hostga',
  target: string,
  caller: FixtureCaller | null,
  outcome: 'allow' | 'deny' | 'audit-deny' | 'error',
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  seq++;
  return {
    time: new Date(Date.UTC(2025, 3, 23, 12, 0, seq)).toISOString(),
    connectionId: seq,
    requestId: seq,
    caller: caller && {
      pid: 1000 + seq,
      uid: caller.uid,
      gid: caller.uid,
      userName: caller.userName,
      groups: [{ gid: caller.uid, name: caller.userName }],
      exePath: caller.exePath,
      processName: caller.processName ?? caller.exePath.split('/').pop(),
      cmdline: caller.exePath,
      cgroupId: '1',
    },
    comm: caller?.processName ?? null,
    origDst: endpoint === 'imds' ? '169.254.169.254:80' : '168.63.129.16:80',
    endpoint,
    method: 'GET',
    target,
    outcome,
    code: outcome === 'allow' ? 'default_allow' : outcome === 'audit-deny' ? 'default_deny' : 'root_required',
    ruleId: 'r1',
    privilege: null,
    identity: null,
    mode: 'audit',
    policyEpoch: 1,
    status: outcome === 'deny' ? 403 : 200,
    elapsedMs: 1.5,
    upstreamMs: 1,
    signed: outcome !== 'deny',
    ...extra,
  };
}
