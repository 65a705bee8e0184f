import net from 'node:net';
import { ClientConnection } from './client-connection.js';
import { RequestMemos } from './request-memo.js';
import type { ProxyContext, ProxySnapshot } from './types.js';
import { type PoolOptions, UpstreamPool } from './upstream-pool.js';

/** Where a worker listens: host/port (with SO_REUSEPORT where Node supports it) or an inherited fd. */
export type ListenSpec = { host: string; port: number; reusePort?: boolean } | { fd: number };

/**
 * The agent port in one worker thread: accepts connections and hands each to a ClientConnection.
 * Keeps the set of live connections so a shutdown can drain them.
 */
export class ProxyListener {
  readonly server: net.Server;
  readonly pool: UpstreamPool;
  private readonly live = new Set<ClientConnection>();
  /** Per caller and endpoint: the last head, decision and signed upstream head (see RequestMemos). */
  private readonly memos = new RequestMemos();
  /** Connections accepted while held (before the first snapshot); null when not holding. */
  private held: ClientConnection[] | null = null;
  private holdTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly ctx: ProxyContext,
    poolOptions: Partial<PoolOptions> = {},
  ) {
    this.pool = new UpstreamPool({ connectTimeoutMs: ctx.timeouts.connectMs, ...poolOptions });
    this.server = net.createServer({ noDelay: true }, (socket) => {
      try {
        // Attribution and claims happen now, at accept, even while held (the caller may exit soon).
        const c = new ClientConnection(socket, ctx, this.pool, this.memos);
        this.live.add(c);
        socket.once('close', () => this.live.delete(c));
        if (this.held !== null) {
          socket.pause();
          this.held.push(c);
        }
      } catch {
        socket.destroy(); // nothing a client does may take the worker down
      }
    });
    this.server.on('error', () => {});
  }

  /** Starts listening; resolves to the bound address. */
  listen(spec: ListenSpec): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      const done = () => {
        this.server.off('error', onError);
        resolve(this.server.address() as net.AddressInfo);
      };
      if ('fd' in spec) this.server.listen({ fd: spec.fd }, done);
      else {
        // `reusePort` is honoured from Node 22.12/23.1; older Nodes ignore it (callers pass an fd there).
        const opts = { host: spec.host, port: spec.port, reusePort: spec.reusePort === true } as net.ListenOptions;
        this.server.listen(opts, done);
      }
    });
  }

  /** Replaces the snapshot new requests use; requests in flight keep the one they started with. */
  setSnapshot(snapshot: ProxySnapshot): void {
    this.ctx.snapshot = snapshot;
  }

  /**
   * Holds new connections (accepted, attributed, but not read) until `release()` or `maxMs`. Used
   * before the first snapshot: a client that connects right after a restart waits a moment instead
   * of being answered 503. After `maxMs` they are served with whatever snapshot is current.
   */
  hold(maxMs: number): void {
    if (this.held !== null) return;
    this.held = [];
    this.holdTimer = setTimeout(() => this.release(), maxMs);
    this.holdTimer.unref();
  }

  /** Serves the held connections, in the order they arrived, and stops holding. */
  release(): void {
    const held = this.held;
    if (held === null) return;
    this.held = null;
    if (this.holdTimer !== null) clearTimeout(this.holdTimer);
    this.holdTimer = null;
    for (const c of held) if (!c.closed) c.socket.resume();
  }

  /** True while new connections are held. */
  get holding(): boolean {
    return this.held !== null;
  }

  /** Connections currently open. */
  get connectionCount(): number {
    return this.live.size;
  }

  /** Stops accepting, lets requests in flight finish (up to `drainMs`), then closes everything. */
  async close(drainMs = 5000): Promise<void> {
    this.ctx.draining = true;
    this.release();
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const c of this.live) c.closeIfIdle();
    const deadline = Date.now() + drainMs;
    while (this.live.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.live) c.socket.destroy();
    this.pool.close();
    await closed;
  }
}
