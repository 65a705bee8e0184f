/**
 * The status.json document, field for field as host-protocol.md section 6 names it. Nothing else is
 * added at the top level or in `proxyAgentStatus`: the host side reads these names.
 */

export type ModuleState = 'UNKNOWN' | 'RUNNING' | 'STOPPED';
export type OverallState = 'SUCCESS' | 'ERROR' | 'UNKNOWN';

export interface ModuleStatus {
  status: ModuleState;
  message: string;
}

export interface KeyLatchStates {
  secureChannelState: string;
  keyGuid: string;
  wireServerRuleId: string;
  imdsRuleId: string;
  hostGARuleId: string;
  keyIncarnationId: string;
}

/** One row of a connection summary (already redacted by the data plane). */
export interface ConnectionSummaryEntry {
  userName: string;
  userGroups?: string[] | null;
  ip: string;
  port: number;
  processFullPath?: string | null;
  processCmdLine: string;
  responseStatus: string;
  count: number;
}

export interface StatusDocument {
  timestamp: string;
  proxyAgentStatus: {
    version: string;
    status: OverallState;
    keyLatchStatus: ModuleStatus & { states: KeyLatchStates };
    ebpfProgramStatus: ModuleStatus;
    proxyListenerStatus: ModuleStatus;
    telemetryLoggerStatus: ModuleStatus;
    proxyConnectionsCount: number;
  };
  proxyConnectionSummary: ConnectionSummaryEntry[];
  failedAuthenticateSummary: ConnectionSummaryEntry[];
}

/** What the agent knows when the document is built; every field is optional so a partial start-up still reports. */
export interface StatusInputs {
  version: string;
  now?: Date;
  key?: {
    secureChannelState: string;
    guid?: string | null;
    ruleIds?: Partial<Record<'imds' | 'wireserver' | 'hostga', string | null>>;
    keyIncarnationId?: number | null;
    health?: 'unknown' | 'ok' | 'degraded';
    statusMessage?: string;
  };
  redirector?: ModuleStatus;
  listener?: ModuleStatus;
  telemetry?: ModuleStatus;
  connectionsCount?: number;
  connectionSummary?: ConnectionSummaryEntry[];
  failedAuthenticateSummary?: ConnectionSummaryEntry[];
}

const unknown = (message: string): ModuleStatus => ({ status: 'UNKNOWN', message });

/** Builds the document. The overall status is SUCCESS only when every required module is RUNNING. */
export function buildStatusDocument(i: StatusInputs): StatusDocument {
  const k = i.key;
  const keyLatch: ModuleStatus =
    k === undefined
      ? unknown('the key keeper has not reported yet; it polls the WireServer at start-up')
      : {
          status: k.health === 'degraded' ? 'STOPPED' : k.health === 'ok' ? 'RUNNING' : 'UNKNOWN',
          message: k.statusMessage ?? '',
        };
  const ebpf = i.redirector ?? unknown('the redirector has not started yet');
  const listener = i.listener ?? unknown('the proxy listener has not started yet');
  const telemetry = i.telemetry ?? { status: 'RUNNING', message: 'audit log writer running' };
  const required = [keyLatch, ebpf, listener];
  const overall: OverallState = required.every((m) => m.status === 'RUNNING')
    ? 'SUCCESS'
    : required.some((m) => m.status === 'STOPPED')
      ? 'ERROR'
      : 'UNKNOWN';
  return {
    timestamp: (i.now ?? new Date()).toISOString(),
    proxyAgentStatus: {
      version: i.version,
      status: overall,
      keyLatchStatus: {
        ...keyLatch,
        states: {
          secureChannelState: k?.secureChannelState ?? 'Unknown',
          keyGuid: k?.guid ?? '',
          wireServerRuleId: k?.ruleIds?.wireserver ?? '',
          imdsRuleId: k?.ruleIds?.imds ?? '',
          hostGARuleId: k?.ruleIds?.hostga ?? '',
          keyIncarnationId: k?.keyIncarnationId == null ? '' : String(k.keyIncarnationId),
        },
      },
      ebpfProgramStatus: ebpf,
      proxyListenerStatus: listener,
      telemetryLoggerStatus: telemetry,
      proxyConnectionsCount: i.connectionsCount ?? 0,
    },
    proxyConnectionSummary: i.connectionSummary ?? [],
    failedAuthenticateSummary: i.failedAuthenticateSummary ?? [],
  };
}

/**
 * What status.json says, without what changes on its own (timestamp, counters, summaries): when
 * this changes, the document is worth rewriting at once instead of at the next 60 s tick. It covers
 * the overall status, every module's status and message, and the key latch states, whose
 * `secureChannelState` names the per-endpoint modes.
 */
export function statusChangeKey(doc: StatusDocument): string {
  const s = doc.proxyAgentStatus;
  return JSON.stringify([
    s.status,
    s.keyLatchStatus,
    s.ebpfProgramStatus,
    s.proxyListenerStatus,
    s.telemetryLoggerStatus,
  ]);
}
