import { type ResourceLimits, Worker } from 'node:worker_threads';
import type { AuditBatch } from '../audit/index.js';
import { type ConnectionLimits, type EndpointRoute, type ProxyTimeouts, perWorker } from '../proxy/index.js';
import { createReusePortListener } from '../redirector/index.js';
import { isMessage, type MainToWorker, type SnapshotMessage, type WorkerInit, type WorkerToMain } from './messages.js';

const WORKER_FILE = new URL('./worker-main.js', import.meta.url);

/**
 * V8 heap limits of a data-plane worker. Its live heap is ~8 MB (heap snapshots under load); with
 * V8's defaults it still commits 50-65 MB under load: a 16 MB semi-space (young generation 48 MB)
 * and, because the default heap limit is 4 GB, an old space allowed to grow to ~4x the live size
 * (~35 MB) before a full GC. That RSS stays until V8's memory reducer runs, seconds after the load.
 *
 * Measured (bench mixed load, 2 cores, worker GC from --trace-gc): RSS under load ~110 MiB with
 * these limits, ~120 with the young limit alone, ~135 with neither. Full GCs come about twice as
 * often (old space collected at ~17 MB), scavenges a little more often; total worker GC pause per
 * request stayed within the run-to-run noise (4-6 µs). The young generation of 24 MB is an 8 MB
 * semi-space. A worker that did hit 512 MB of old space (60x its live heap) would end with
 * ERR_WORKER_OUT_OF_MEMORY and WorkerSet restarts it; the process and the other workers go on.
 */
export const WORKER_HEAP_LIMITS = { maxYoungGenerationSizeMb: 24, maxOldGenerationSizeMb: 512 } as const;

/** Environment variables that override a limit (MB; 0 = V8's default), to compare settings without a rebuild. */
export const WORKER_HEAP_ENV: Record<keyof typeof WORKER_HEAP_LIMITS, string> = {
  maxYoungGenerationSizeMb: 'GPA_WORKER_YOUNG_GENERATION_MB',
  maxOldGenerationSizeMb: 'GPA_WORKER_OLD_GENERATION_MB',
};

/**
 * The resourceLimits for a data-plane worker: WORKER_HEAP_LIMITS unless overridden through
 * WORKER_HEAP_ENV. Note that V8 gives node's own heap flags precedence: `--max-semi-space-size`
 * or `--max-old-space-size` on the command line set every isolate, workers included, whatever
 * these limits say. A value that is not a whole number of MB is an error naming the variable.
 */
export function workerResourceLimits(env: NodeJS.ProcessEnv = process.env): ResourceLimits {
  const limits: ResourceLimits = {};
  for (const key of Object.keys(WORKER_HEAP_LIMITS) as (keyof typeof WORKER_HEAP_LIMITS)[]) {
    const name = WORKER_HEAP_ENV[key];
    const raw = env[name];
    if (raw === undefined || raw === '') {
      limits[key] = WORKER_HEAP_LIMITS[key];
      continue;
    }
    const mb = Number(raw);
    if (!Number.isInteger(mb) || mb < 0 || mb > 65536)
      throw new Error(
        `${name}=${raw} must be a whole number of MB (0 = V8's default); unset it to use ${WORKER_HEAP_LIMITS[key]}`,
      );
    if (mb > 0) limits[key] = mb;
  }
  return limits;
}

/** True when this Node honours `listen({ reusePort })` (22.12+, 23.1+). */
export function nodeHasReusePort(version = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major >= 24 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

export interface WorkerSetOptions {
  count: number;
  clientSockets: 'native' | 'node';
  host: string;
  port: number;
  routes: EndpointRoute[];
  timeouts: ProxyTimeouts;
  /** The whole agent's connection limits; each worker gets its share. */
  connections: ConnectionLimits;
  redirect: boolean;
  metrics: boolean;
  /** `giveBack`: hands the batch's buffer back to its worker once written (transferred). */
  onAudit: (batch: AuditBatch, giveBack: (buffer: ArrayBuffer) => void) => void;
  onNotifyKeyKeeper: () => void;
  /** Worker number `index` is now `worker` (listening), or null (gone; a new one is being started). */
  onWorker?: (index: number, worker: Worker | null) => void;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

/**
 * The data-plane worker threads of the main thread's side: starts them on a shared port, sends
 * every snapshot to all of them (and again to a worker that had to be restarted), forwards their
 * audit batches to the log, and drains them on shutdown.
 */
export class WorkerSet {
  readonly workers: (Worker | null)[] = [];
  port = 0;
  private last: SnapshotMessage | null = null;
  private stopping = false;

  constructor(private readonly opts: WorkerSetOptions) {}

  /** Starts every worker and resolves once all are listening (the first one fixes an ephemeral port). */
  async start(): Promise<number> {
    this.port = this.opts.port;
    await this.spawn(0);
    for (let i = 1; i < this.opts.count; i++) await this.spawn(i);
    return this.port;
  }

  /** Sends a message to every worker; a snapshot is also kept for workers started later. */
  post(m: MainToWorker): void {
    if (m.type === 'gpa:snapshot') this.last = m;
    for (const w of this.workers) w?.postMessage(m);
  }

  /** Stops accepting, waits for requests in flight (up to drainMs), then ends the workers. */
  async drain(drainMs: number): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.workers.map(async (w) => {
        if (w === null) return;
        const done = new Promise<void>((resolve) => {
          w.once('exit', () => resolve());
          w.on('message', (m: WorkerToMain) => {
            if (m.type === 'gpa:drained') resolve();
          });
        });
        w.postMessage({ type: 'gpa:drain', drainMs } satisfies MainToWorker);
        const timer = setTimeout(() => void w.terminate(), drainMs + 2000);
        await done;
        clearTimeout(timer);
        await w.terminate();
      }),
    );
  }

  private listenSpec(): WorkerInit['listen'] {
    const { host } = this.opts;
    if (nodeHasReusePort() || this.opts.count === 1) return { host, port: this.port, reusePort: this.opts.count > 1 };
    // Node 20 ignores reusePort: the addon creates an SO_REUSEPORT socket per worker.
    return { fd: createReusePortListener(host, this.port) };
  }

  private spawn(index: number): Promise<void> {
    const init: WorkerInit = {
      index,
      listen: this.listenSpec(),
      clientSockets: this.opts.clientSockets,
      routes: this.opts.routes,
      timeouts: this.opts.timeouts,
      redirect: this.opts.redirect,
      metrics: this.opts.metrics,
      connections: perWorker(this.opts.connections, this.opts.count),
    };
    // Workers inherit execArgv unless told otherwise (a --cpu-prof or --inspect would apply to each).
    const w = new Worker(WORKER_FILE, { workerData: init, execArgv: [], resourceLimits: workerResourceLimits() });
    this.workers[index] = w;
    // A worker that has exited or been replaced gets nothing back; the buffer is then only garbage.
    const giveBack = (buffer: ArrayBuffer) => {
      if (this.workers[index] !== w || buffer.byteLength === 0) return;
      w.postMessage({ type: 'gpa:audit-buffer', buffer } satisfies MainToWorker, [buffer]);
    };
    w.on('message', (m: WorkerToMain) => {
      if (isMessage<{ type: 'gpa:audit'; batch: AuditBatch }>(m, 'gpa:audit')) this.opts.onAudit(m.batch, giveBack);
      else if (m.type === 'gpa:notify-keykeeper') this.opts.onNotifyKeyKeeper();
    });
    w.on('error', (err) => this.opts.log('error', `data-plane worker ${index} failed: ${err.stack ?? err.message}`));
    return new Promise((resolve, reject) => {
      const onMessage = (m: WorkerToMain) => {
        if (m.type === 'gpa:listening') {
          w.off('message', onMessage);
          if (this.port === 0) this.port = m.port;
          if (this.last !== null) w.postMessage(this.last);
          w.once('exit', (code) => this.onExit(index, w, code));
          this.opts.onWorker?.(index, w);
          resolve();
        } else if (m.type === 'gpa:listen-failed') {
          w.off('message', onMessage);
          void w.terminate();
          reject(new Error(`cannot listen on ${this.opts.host}:${this.port}: ${m.message}; is another agent running?`));
        }
      };
      w.on('message', onMessage);
      w.once('exit', (code) => reject(new Error(`data-plane worker ${index} exited during start (code ${code})`)));
    });
  }

  private onExit(index: number, w: Worker, code: number): void {
    if (this.stopping || this.workers[index] !== w) return;
    this.opts.log('error', `data-plane worker ${index} exited (code ${code}); restarting it`);
    this.workers[index] = null;
    this.opts.onWorker?.(index, null);
    this.spawn(index).catch((err: Error) => this.opts.log('error', err.message));
  }
}
