import path from 'node:path';
import { AuditLog } from '../audit/index.js';
import type { Endpoint, KeyKeeper, KeySnapshot } from '../keykeeper/index.js';
import { type AgentMetrics, createAgentMetrics, type MetricsServer, startMetricsServer } from '../metrics/index.js';
import { closeSelfTestPool, compilePolicy, type PolicySnapshot, runSelfTest } from '../policy/index.js';
import type { EndpointRoute } from '../proxy/index.js';
import * as redirector from '../redirector/index.js';
import {
  buildStatusDocument,
  listenerModuleStatus,
  type ModuleStatus,
  ProvisioningTracker,
  redirectorModuleStatus,
  type StatusDocument,
  type StatusWriter,
  startStatusWriter,
} from '../status/index.js';
import type { AgentConfig } from './config.js';
import type { SnapshotMessage, StateMessage } from './messages.js';
import { keyReadiness, ObservedKeyKeeper } from './observed-keeper.js';
import { WorkerSet } from './workers.js';

const ENDPOINTS: Endpoint[] = ['imds', 'wireserver', 'hostga'];
export type Log = (level: 'info' | 'warn' | 'error', message: string) => void;

/**
 * The agent process's control plane (main thread). Start-up order matters for default-closed
 * behaviour: audit log → redirector attached with no rules (and this process exempt) → workers
 * listening with a deny-all snapshot → key keeper; then on every key snapshot: compile policy,
 * publish it to the workers, and only then install redirect rules for endpoints whose mode is not
 * disabled (removing the others). SIGTERM: stop polling, drain workers, flush the log, detach.
 */
export class Agent {
  readonly audit: AuditLog;
  readonly provisioning = new ProvisioningTracker();
  readonly workers: WorkerSet;
  keeper: KeyKeeper | null = null;
  metrics: AgentMetrics | null = null;
  metricsServer: MetricsServer | null = null;
  policy: PolicySnapshot | null = null;
  policyProblems: string[] = [];
  listenPort = 0;
  /** Requests handled (one audit record each), for status.json `proxyConnectionsCount`. */
  connectionsCount = 0;
  statusWriter: StatusWriter | null = null;
  /** Set when the redirector's start-up self-test failed (status.json shows it; start() throws). */
  private redirectorError: string | null = null;
  private listenerError: string | null = null;
  private stopping = false;
  private provisionTimer: NodeJS.Timeout | null = null;
  private lastClockOffset: number | null = null;
  private lastPolled: KeySnapshot | null = null;
  private lastWrittenState = '';
  private keySnapshot: KeySnapshot | null = null;
  private chain: Promise<void> = Promise.resolve();
  private installed = new Set<Endpoint>();
  private rulesReconciled = false;

  constructor(
    readonly config: AgentConfig,
    private readonly log: Log = () => {},
  ) {
    this.audit = new AuditLog({ folder: config.logFolder, ...config.audit });
    this.workers = new WorkerSet({
      count: config.workers,
      host: config.listener.address,
      port: config.listener.port,
      routes: this.routes(),
      timeouts: config.timeouts,
      redirect: config.redirect,
      metrics: config.metrics !== null,
      onAudit: (b) => {
        this.connectionsCount += b.records;
        this.audit.append(b);
      },
      onNotifyKeyKeeper: () => void this.keeper?.pollOnce(),
      log,
    });
  }

  routes(): EndpointRoute[] {
    return ENDPOINTS.map((name) => {
      const e = this.config.endpoints[name];
      return { name, address: e.address, port: e.port, upstream: e.upstream };
    });
  }

  async start(): Promise<void> {
    const c = this.config;
    this.statusWriter = startStatusWriter({
      file: path.join(c.logFolder, 'status.json'),
      collect: () => this.statusDocument(),
      onError: (err) => this.log('warn', `cannot write status.json: ${(err as Error).message}`),
    });
    this.provisionTimer = setTimeout(() => {
      this.provisioning.timeUp();
      this.publishState();
      const msg = this.provisioning.snapshot().errorMessage;
      if (msg)
        this.log('warn', `provisioning gave up after ${c.provisionTimeoutSeconds} s: ${msg.replace(/\n/g, '; ')}`);
    }, c.provisionTimeoutSeconds * 1000);
    this.provisionTimer.unref();
    if (c.redirect) {
      const st = redirector.start({
        ...(c.cgroupPath ? { cgroupPath: c.cgroupPath } : {}),
        ...(c.pinDir ? { pinDir: c.pinDir } : {}),
        exemptSelf: true,
      });
      if (st.state !== 'running' && st.state !== 'degraded') {
        throw new Error(
          `the eBPF redirector did not start (${st.state}): ${st.lastError?.message ?? 'unknown reason'}`,
        );
      }
      // Rules left by a previous run (pinned maps) stay until the first key snapshot reconciles them,
      // so a restart never opens a window where clients reach the host unsigned.
      for (const r of redirector.listRules()) {
        const ep = ENDPOINTS.find((n) => c.endpoints[n].address === r.dst && c.endpoints[n].port === r.dstPort);
        if (ep) this.installed.add(ep);
        else redirector.removeRule(r.dst, r.dstPort);
      }
      await this.redirectorSelfTest();
      this.provisioning.markReady('redirector');
    }
    try {
      this.listenPort = await this.workers.start();
    } catch (err) {
      this.listenerError = (err as Error).message;
      this.provisioning.markNotReady('listener', this.listenerError);
      this.statusWriter.writeNow();
      throw err;
    }
    this.provisioning.markReady('listener');
    if (c.metrics !== null) {
      this.metrics = createAgentMetrics();
      this.metrics.setWorkers(this.workers.workers.filter((w) => w !== null));
      if (c.redirect)
        this.metrics.control.setRedirectorSource(() => ({ ...redirector.status(), stats: redirector.stats() }));
      this.metricsServer = await startMetricsServer({
        host: c.metrics.address,
        port: c.metrics.port,
        gather: () => this.metrics!.gather(),
      });
    }
    this.keeper = new ObservedKeyKeeper(
      {
        wireserver: c.endpoints.wireserver.upstream,
        keyFolder: c.latchKeyFolder,
        pollIntervalMs: c.pollKeyStatusIntervalInSeconds * 1000,
        onSnapshot: (s) => {
          this.chain = this.chain
            .then(() => this.applyKeySnapshot(s))
            .catch((err) => this.log('error', `applying key snapshot: ${err}`));
        },
        log: this.log,
      },
      (s) => this.afterPoll(s),
    );
    this.keeper.start();
    this.statusWriter.writeNow();
  }

  /**
   * The start-up self-test (a child's connect to a sentinel must be redirected and attributed to
   * it; our own must not loop). Failing it means attribution cannot be trusted: the redirector is
   * marked failed and start() throws, so the agent never reports RUNNING or serves on a wrong identity.
   */
  private async redirectorSelfTest(): Promise<void> {
    if (redirector.status().state !== 'running') return;
    const r = await redirector.selfTest();
    if (r.ok) return;
    this.redirectorError = `eBPF redirector self-test failed: ${r.reason}; connections cannot be attributed reliably, so the agent refuses to run. Run 'gpa doctor' and look for other programs on the cgroup hooks ('bpftool cgroup tree')`;
    this.provisioning.markNotReady('redirector', this.redirectorError);
    this.statusWriter?.writeNow();
    throw new Error(this.redirectorError);
  }

  /** After every finished key-keeper poll (changed or not): readiness, host clock, workers' view. */
  private afterPoll(s: KeySnapshot): void {
    const offset = this.keeper?.clockOffsetMs() ?? 0;
    if (offset !== this.lastClockOffset) {
      this.lastClockOffset = offset;
      this.metrics?.control.onHostClock(offset);
    }
    const prev = this.lastPolled;
    this.lastPolled = s;
    // Queued behind the snapshot's own application, so "ready" is never reported before the policy
    // and redirect rules of that poll are in place.
    this.chain = this.chain
      .then(() => {
        const r = keyReadiness(prev, s);
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
        this.publishState();
      })
      .catch((err) => this.log('error', `updating readiness: ${err}`));
  }

  /** Sends readiness and the aggregated status to the workers (no policy compile); rewrites status.json on a change. */
  private publishState(): void {
    const provision = this.provisioning.snapshot();
    const doc = this.statusDocument();
    const m: StateMessage = {
      type: 'gpa:state',
      provision,
      aggregatedStatus: JSON.stringify(doc),
      hostClockOffsetMs: this.keeper?.clockOffsetMs() ?? 0,
    };
    this.workers.post(m);
    // status.json follows readiness at once (not only every 60 s), so an operator sees the change.
    const state = `${provision.errorMessage}|${doc.proxyAgentStatus.status}`;
    if (state !== this.lastWrittenState) {
      this.lastWrittenState = state;
      this.statusWriter?.writeNow();
    }
  }

  private async applyKeySnapshot(ks: KeySnapshot): Promise<void> {
    this.keySnapshot = ks;
    const rules: Partial<Record<Endpoint, unknown>> = {};
    for (const ep of ENDPOINTS) {
      const v = ks.rules[ep];
      if (v !== undefined) rules[ep] = Buffer.isBuffer(v) ? v.toString('utf8') : v;
    }
    const input = {
      modes: { ...ks.modes },
      rules,
      ruleIds: { ...ks.ruleIds },
      localRulesDir: this.config.rulesFolder,
      epoch: ks.epoch,
    };
    let extraProblems: Awaited<ReturnType<typeof runSelfTest>> = [];
    try {
      extraProblems = await runSelfTest(input);
    } catch (err) {
      this.log('warn', `policy self-test could not run: ${(err as Error).message}`);
    }
    const result = compilePolicy({ ...input, extraProblems, ...(this.policy ? { previous: this.policy } : {}) });
    this.policy = result.snapshot;
    this.policyProblems = result.problems.map((p) => `${p.endpoint ?? '-'} ${p.path}: ${p.message}`);
    this.metrics?.control.onKeySnapshot(ks);
    this.metrics?.control.onPolicyCompiled({
      epoch: ks.epoch,
      failClosed: result.failClosed,
      keptPrevious: result.keptPrevious,
      problems: result.problems.length,
    });
    this.provisioning.setSecureChannelState(ks.secureChannelState);
    const msg: SnapshotMessage = {
      type: 'gpa:snapshot',
      epoch: ks.epoch,
      policy: { ...input, extraProblems },
      key: ks.key ? { guid: ks.key.guid, bytes: new Uint8Array(ks.key.bytes) } : null,
      hostClockOffsetMs: this.keeper?.clockOffsetMs() ?? 0,
      provision: this.provisioning.snapshot(),
      aggregatedStatus: JSON.stringify(this.statusDocument()),
    };
    this.workers.post(msg);
    this.updateRedirectRules(ks);
  }

  /** Redirect exactly the endpoints whose mode is not disabled (one source of truth: the key snapshot). */
  private updateRedirectRules(ks: KeySnapshot): void {
    if (!this.config.redirect) return;
    for (const ep of ENDPOINTS) {
      const e = this.config.endpoints[ep];
      const want = ks.modes[ep] !== 'disabled';
      if (want && (!this.installed.has(ep) || !this.rulesReconciled)) {
        redirector.setRule({
          dst: e.address,
          dstPort: e.port,
          proxy: this.config.listener.address,
          proxyPort: this.listenPort,
        });
        this.installed.add(ep);
        this.log('info', `redirecting ${ep} (${e.address}:${e.port}) to the agent: mode ${ks.modes[ep]}`);
      } else if (!want && this.installed.has(ep)) {
        redirector.removeRule(e.address, e.port);
        this.installed.delete(ep);
        this.log('info', `no longer redirecting ${ep}: mode disabled`);
      }
    }
    this.rulesReconciled = true;
  }

  /** The status.json document (the operations part writes it to disk). */
  statusDocument(): StatusDocument {
    const ks = this.keySnapshot;
    return buildStatusDocument({
      version: '0.1.0',
      ...(ks
        ? {
            key: {
              secureChannelState: ks.secureChannelState,
              guid: ks.key?.guid ?? null,
              ruleIds: ks.ruleIds,
              keyIncarnationId: ks.keyIncarnationId,
              health: ks.health,
              statusMessage: ks.statusMessage,
            },
          }
        : {}),
      redirector: this.redirectorStatus(),
      listener:
        this.listenPort > 0 && !this.stopping
          ? listenerModuleStatus({
              bound: true,
              address: this.config.listener.address,
              port: this.listenPort,
              workers: this.config.workers,
            })
          : listenerModuleStatus({
              bound: false,
              address: this.config.listener.address,
              port: this.config.listener.port,
              ...(this.listenerError
                ? { error: this.listenerError }
                : this.stopping
                  ? { error: 'agent stopping' }
                  : {}),
            }),
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

  /** Drain and stop: no new connections, requests in flight finish, the log is flushed. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.provisionTimer) clearTimeout(this.provisionTimer);
    await this.keeper?.stop();
    await this.chain.catch(() => {});
    await this.workers.drain(this.config.drainSeconds * 1000);
    if (this.config.redirect) {
      for (const ep of this.installed) {
        const e = this.config.endpoints[ep];
        // Pinned mode keeps the rules so a restart is seamless and a crash fails closed.
        if (!this.config.pinDir) redirector.removeRule(e.address, e.port);
      }
      redirector.stop({ unpin: false });
    }
    await this.metricsServer?.close();
    this.metrics?.close();
    await this.audit.close();
    await closeSelfTestPool();
    this.statusWriter?.writeNow();
    this.statusWriter?.stop();
  }

  /** Where the audit log lives. */
  get auditFile(): string {
    return path.join(this.config.logFolder, 'ProxyAgent.Connection.log');
  }
}
