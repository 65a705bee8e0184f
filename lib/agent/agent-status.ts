import path from 'node:path';
import type { AuditLog } from '../audit/index.js';
import type { KeySnapshot } from '../keykeeper/index.js';
import * as redirector from '../redirector/index.js';
import {
  buildStatusDocument,
  keyLatchMessage,
  listenerModuleStatus,
  type ModuleStatus,
  ProvisioningTracker,
  redirectorModuleStatus,
  type StatusDocument,
  type StatusWriter,
  startStatusWriter,
  statusChangeKey,
} from '../status/index.js';
import { packageVersion } from '../version.js';
import type { AgentConfig } from './config.js';
import type { StateMessage } from './messages.js';
import { keyReadiness } from './observed-keeper.js';
import type { WorkerSet } from './workers.js';

export type Log = (level: 'info' | 'warn' | 'error', message: string) => void;

/**
 * What the agent says about itself: readiness (`/provision`), the status.json document and its
 * writer, and the aggregated status the workers serve. status.json is rewritten every 60 s (for the
 * counters and summaries) and at once whenever what it says changes: readiness, a module's state,
 * or the key latch states, which include the per-endpoint modes of each new key snapshot.
 */
export class AgentStatus {
  readonly provisioning = new ProvisioningTracker();
  /** Requests handled (one audit record each), for status.json `proxyConnectionsCount`. */
  connectionsCount = 0;
  /** The port the workers listen on, once they do. */
  listenPort = 0;
  stopping = false;
  /** Set when the redirector's start-up self-test failed (status.json shows it; start() throws). */
  redirectorError: string | null = null;
  listenerError: string | null = null;
  /** The last key snapshot applied (status.json's key latch part). */
  keySnapshot: KeySnapshot | null = null;
  /** What the last policy compile changed in enforcement (fail closed, kept previous); '' when nothing. */
  policyNote = '';
  private writer: StatusWriter | null = null;
  private lastWritten = '';
  private lastPolled: KeySnapshot | null = null;

  constructor(
    private readonly config: AgentConfig,
    private readonly audit: AuditLog,
    private readonly workers: WorkerSet,
    private readonly clockOffsetMs: () => number,
    private readonly log: Log,
  ) {}

  /** Starts the periodic status.json rewrite (the first write is immediate). */
  startWriter(): void {
    this.writer = startStatusWriter({
      file: path.join(this.config.logFolder, 'status.json'),
      collect: () => this.document(),
      onError: (err) => this.log('warn', `cannot write status.json: ${(err as Error).message}`),
    });
  }

  writeNow(): void {
    this.writer?.writeNow();
  }

  /** A last write (the stopped listener shows), then no more. */
  stopWriter(): void {
    this.writer?.writeNow();
    this.writer?.stop();
  }

  /** Readiness after a finished key-keeper poll (changed or not), then publish. */
  afterPoll(s: KeySnapshot): void {
    const r = keyReadiness(this.lastPolled, s);
    this.lastPolled = s;
    if (r === 'ready') this.provisioning.markReady('key');
    else if (r === 'dropped')
      this.provisioning.markNotReady(
        'key',
        `the key was dropped while ${Object.entries(s.modes)
          .filter(([, m]) => m !== 'disabled')
          .map(([e]) => e)
          .join(', ')} still need one: ${s.statusMessage}`,
      );
    else if (r === 'waiting') this.provisioning.setMessage('key', s.statusMessage);
    this.provisioning.setSecureChannelState(s.secureChannelState);
    this.publish();
  }

  /** Sends readiness and the aggregated status to the workers (no policy compile); rewrites status.json on a change. */
  publish(): void {
    const provision = this.provisioning.snapshot();
    const doc = this.document();
    const m: StateMessage = {
      type: 'gpa:state',
      provision,
      aggregatedStatus: JSON.stringify(doc),
      hostClockOffsetMs: this.clockOffsetMs(),
    };
    this.workers.post(m);
    this.writeIfChanged(doc);
  }

  /** Rewrites status.json now if what it says changed since the last such write. */
  writeIfChanged(doc: StatusDocument = this.document()): void {
    const state = `${this.provisioning.snapshot().errorMessage}|${statusChangeKey(doc)}`;
    if (state === this.lastWritten) return;
    this.lastWritten = state;
    this.writer?.writeNow();
  }

  /** The status.json document. */
  document(): StatusDocument {
    const ks = this.keySnapshot;
    const c = this.config;
    return buildStatusDocument({
      version: packageVersion(),
      ...(ks
        ? {
            key: {
              secureChannelState: ks.secureChannelState,
              guid: ks.key?.guid ?? null,
              ruleIds: ks.ruleIds,
              keyIncarnationId: ks.keyIncarnationId,
              health: ks.health,
              statusMessage: keyLatchMessage({
                ...ks,
                policy: this.policyNote,
                wireServer: c.endpoints.wireserver.upstream.host,
              }),
            },
          }
        : {}),
      redirector: this.redirectorStatus(),
      listener:
        this.listenPort > 0 && !this.stopping
          ? listenerModuleStatus({
              bound: true,
              address: c.listener.address,
              port: this.listenPort,
              workers: c.workers,
            })
          : listenerModuleStatus({
              bound: false,
              address: c.listener.address,
              port: c.listener.port,
              ...(this.listenerError
                ? { error: this.listenerError }
                : this.stopping
                  ? { error: 'agent stopping' }
                  : {}),
            }),
      telemetry: this.audit.healthy
        ? { status: 'RUNNING', message: 'audit log writer running' }
        : { status: 'STOPPED', message: `${this.audit.lastError}; audit records are being dropped` },
      connectionsCount: this.connectionsCount,
      connectionSummary: this.audit.summaries.connectionSummary(),
      failedAuthenticateSummary: this.audit.summaries.failedAuthenticateSummary(),
    });
  }

  private redirectorStatus(): ModuleStatus {
    if (!this.config.redirect)
      return { status: 'STOPPED', message: 'eBPF redirect is off in the config ("redirect": false; tests only)' };
    if (this.redirectorError) return { status: 'STOPPED', message: this.redirectorError };
    return redirectorModuleStatus(redirector.status());
  }
}
