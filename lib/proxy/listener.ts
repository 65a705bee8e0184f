import net from 'node:net';
import { ClientConnection } from './client-connection.js';
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

  constructor(
    readonly ctx: ProxyContext,
    poolOptions: Partial<PoolOptions> = {},
  ) {
    this.pool = new UpstreamPool({ connectTimeoutMs: ctx.timeouts.connectMs, ...poolOptions });
    this.server = net.createServer({ noDelay: true }, (socket) => {
      try {
        const c = new ClientConnection(socket, ctx, this.pool);
        this.live.add(c);
        socket.once('close', () => this.live.delete(c));
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

  /** Connections currently open. */
  get connectionCount(): number {
    return this.live.size;
  }

  /** Stops accepting, lets requests in flight finish (up to `drainMs`), then closes everything. */
  async close(drainMs = 5000): Promise<void> {
    this.ctx.draining = true;
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const c of this.live) c.closeIfIdle();
    const deadline = Date.now() + drainMs;
    while (this.live.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.live) c.socket.destroy();
    this.pool.close();
    await closed;
  }
}
