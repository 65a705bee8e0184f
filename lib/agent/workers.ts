import { Worker } from 'node:worker_threads';
import type { AuditBatch } from '../audit/index.js';
import type { EndpointRoute, ProxyTimeouts } from '../proxy/index.js';
import { createReusePortListener } from '../redirector/index.js';
import { isMessage, type MainToWorker, type SnapshotMessage, type WorkerInit, type WorkerToMain } from './messages.js';

const WORKER_FILE = new URL('./worker-main.js', import.meta.url);

/** True when this Node honours `listen({ reusePort })` (22.12+, 23.1+). */
export function nodeHasReusePort(version = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major >= 24 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

export interface WorkerSetOptions {
  count: number;
  host: string;
  port: number;
  routes: EndpointRoute[];
  timeouts: ProxyTimeouts;
  redirect: boolean;
  metrics: boolean;
  onAudit: (batch: AuditBatch) => void;
  onNotifyKeyKeeper: () => void;
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
      routes: this.opts.routes,
      timeouts: this.opts.timeouts,
      redirect: this.opts.redirect,
      metrics: this.opts.metrics,
    };
    // Workers inherit execArgv unless told otherwise (a --cpu-prof or --inspect would apply to each).
    const w = new Worker(WORKER_FILE, { workerData: init, execArgv: [] });
    this.workers[index] = w;
    w.on('message', (m: WorkerToMain) => {
      if (isMessage<{ type: 'gpa:audit'; batch: AuditBatch }>(m, 'gpa:audit')) this.opts.onAudit(m.batch);
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
    this.spawn(index).catch((err: Error) => this.opts.log('error', err.message));
  }
}
