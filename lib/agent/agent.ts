import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AuditLog } from '../audit/index.js';
import type { KeyKeeper, KeySnapshot } from '../keykeeper/index.js';
import { type AgentMetrics, createAgentMetrics, type MetricsServer, startMetricsServer } from '../metrics/index.js';
import { closeSelfTestPool, loadSelfTestPool, type PolicySnapshot } from '../policy/index.js';
import { type ConnectionLimits, defaultConnectionLimits, type EndpointRoute, openFilesLimit } from '../proxy/index.js';
import * as redirector from '../redirector/index.js';
import type { StatusDocument } from '../status/index.js';
import { AgentStatus, type Log } from './agent-status.js';
import type { AgentConfig } from './config.js';
import { HEAP_TRIM_DELAY_MS, OldGarbageWatch, scheduleHeapTrim } from './heap-trim.js';
import { KeySnapshotApplier } from './key-snapshots.js';
import { ObservedKeyKeeper } from './observed-keeper.js';
import { ENDPOINTS, RedirectRules } from './redirect-rules.js';
import { WorkerSet } from './workers.js';

export type { Log } from './agent-status.js';

/**
 * The agent process's control plane (main thread). Start-up order matters for default-closed
 * behaviour: audit log → redirector attached with no rules (and this process exempt) → workers
 * listening with a deny-all snapshot → key keeper; then on every key snapshot: compile policy,
 * publish it to the workers, and only then install redirect rules for endpoints whose mode is not
 * disabled (removing the others). SIGTERM: stop polling, drain workers, flush the log, detach.
 */
export class Agent {
  readonly audit: AuditLog;
  readonly workers: WorkerSet;
  readonly status: AgentStatus;
  keeper: KeyKeeper | null = null;
  metrics: AgentMetrics | null = null;
  metricsServer: MetricsServer | null = null;
  private readonly rules: RedirectRules | null;
  private readonly snapshots: KeySnapshotApplier;
  private provisionTimer: NodeJS.Timeout | null = null;
  private trimTimers: (NodeJS.Timeout | null)[] | null = null;
  private lastClockOffset: number | null = null;
  /** Key snapshots and readiness updates, applied one after the other in poll order. */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    readonly config: AgentConfig,
    private readonly log: Log = () => {},
  ) {
    this.audit = new AuditLog({
      folder: config.logFolder,
      ...config.audit,
      onHealthChange: (error) => {
        if (error === null) this.log('info', 'audit log writes work again');
        else
          this.log(
            'error',
            `audit log write failed: ${error}; records are dropped (gpa_audit_records_total{result="dropped"})`,
          );
        this.status.writeIfChanged();
      },
    });
    this.workers = new WorkerSet({
      count: config.workers,
      clientSockets: config.clientSockets,
      host: config.listener.address,
      port: config.listener.port,
      routes: this.routes(),
      timeouts: config.timeouts,
      connections: connectionLimits(config),
      redirect: config.redirect,
      metrics: config.metrics !== null,
      onAudit: (b, giveBack) => {
        this.status.connectionsCount += b.records;
        this.audit.append(b, giveBack);
      },
      onNotifyKeyKeeper: () => void this.keeper?.pollOnce(),
      onWorker: (i, w) => this.metrics?.setWorker(i, w),
      log,
    });
    const clockOffsetMs = () => this.keeper?.clockOffsetMs() ?? 0;
    this.status = new AgentStatus(config, this.audit, this.workers, clockOffsetMs, log);
    this.rules = config.redirect ? new RedirectRules(config, log) : null;
    this.snapshots = new KeySnapshotApplier({
      config,
      workers: this.workers,
      status: this.status,
      rules: this.rules,
      metrics: () => this.metrics,
      clockOffsetMs,
      log,
    });
  }

  routes(): EndpointRoute[] {
    return ENDPOINTS.map((name) => {
      const e = this.config.endpoints[name];
      return { name, address: e.address, port: e.port, upstream: e.upstream };
    });
  }

  /** The port the workers listen on (0 before they do). */
  get listenPort(): number {
    return this.status.listenPort;
  }

  /** The last compiled policy (null before the first key snapshot). */
  get policy(): PolicySnapshot | null {
    return this.snapshots.policy;
  }

  async start(): Promise<void> {
    const c = this.config;
    const status = this.status;
    loadSelfTestPool(); // now, while descriptors are surely free (see loadSelfTestPool)
    status.startWriter();
    this.provisionTimer = setTimeout(() => {
      status.provisioning.timeUp();
      status.publish();
      const msg = status.provisioning.snapshot().errorMessage;
      if (msg)
        this.log('warn', `provisioning gave up after ${c.provisionTimeoutSeconds} s: ${msg.replace(/\n/g, '; ')}`);
    }, c.provisionTimeoutSeconds * 1000);
    this.provisionTimer.unref();
    if (this.rules) {
      this.rules.start();
      await this.redirectorSelfTest();
      status.provisioning.markReady('redirector');
    }
    try {
      status.listenPort = await this.workers.start();
    } catch (err) {
      status.listenerError = (err as Error).message;
      status.provisioning.markNotReady('listener', status.listenerError);
      status.writeNow();
      throw err;
    }
    status.provisioning.markReady('listener');
    if (c.metrics !== null) {
      this.metrics = createAgentMetrics();
      // By index, gaps included: WorkerSet reports a restarted worker under its index.
      this.metrics.setWorkers(this.workers.workers);
      this.metrics.setAuditSource(() => this.audit);
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
        onSnapshot: (s) => this.enqueue(() => this.snapshots.apply(s), 'applying key snapshot'),
        log: this.log,
      },
      (s) => this.afterPoll(s),
    );
    this.keeper.start();
    status.writeNow();
  }

  /** Runs `step` after every step queued before it; a failure is logged and does not stop the queue. */
  private enqueue(step: () => Promise<void> | void, what: string): void {
    this.chain = this.chain.then(step).catch((err) => this.log('error', `${what}: ${err}`));
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
    const message = `eBPF redirector self-test failed: ${r.reason}; connections cannot be attributed reliably, so the agent refuses to run. Run 'gpa doctor' and look for other programs on the cgroup hooks ('bpftool cgroup tree')`;
    this.status.redirectorError = message;
    this.status.provisioning.markNotReady('redirector', message);
    this.status.writeNow();
    throw new Error(message);
  }

  /** After every finished key-keeper poll (changed or not): host clock, readiness, workers' view. */
  private afterPoll(s: KeySnapshot): void {
    // Once, after the first poll (snapshot and self-test done): V8 heap, then glibc's free memory;
    // from then on, the main thread's old generation is kept near its live size.
    if (this.trimTimers === null) {
      const native = setTimeout(() => redirector.trimNativeHeap(), HEAP_TRIM_DELAY_MS + 1000);
      native.unref();
      this.trimTimers = [scheduleHeapTrim(), native, new OldGarbageWatch().start()];
    }
    const offset = this.keeper?.clockOffsetMs() ?? 0;
    if (offset !== this.lastClockOffset) {
      this.lastClockOffset = offset;
      this.metrics?.control.onHostClock(offset);
    }
    // Queued behind the snapshot's own application, so "ready" is never reported before the policy
    // and redirect rules of that poll are in place.
    this.enqueue(() => this.status.afterPoll(s), 'updating readiness');
  }

  /** The status.json document (the operations part writes it to disk). */
  statusDocument(): StatusDocument {
    return this.status.document();
  }

  /** Drain and stop: no new connections, requests in flight finish, the log is flushed. */
  async stop(): Promise<void> {
    this.status.stopping = true;
    if (this.provisionTimer) clearTimeout(this.provisionTimer);
    for (const t of this.trimTimers ?? []) if (t) clearTimeout(t);
    await this.keeper?.stop();
    await this.chain.catch(() => {});
    await this.workers.drain(this.config.drainSeconds * 1000);
    this.rules?.stop();
    await this.metricsServer?.close();
    this.metrics?.close();
    await this.audit.close();
    await closeSelfTestPool();
    this.status.stopWriter();
  }

  /** Where the audit log lives. */
  get auditFile(): string {
    return path.join(this.config.logFolder, 'ProxyAgent.Connection.log');
  }
}

/** The agent's connection limits: the config's, else derived from this process's open-files limit. */
export function connectionLimits(config: AgentConfig): ConnectionLimits {
  const derived = defaultConnectionLimits(openFilesLimit(() => readTextOrNull('/proc/self/limits')));
  const total = config.connections.total ?? derived.total;
  return {
    total,
    perUser:
      config.connections.perUser ??
      (config.connections.total === null ? derived.perUser : Math.max(1, Math.floor(total / 8))),
  };
}

function readTextOrNull(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}
