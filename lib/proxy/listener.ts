import { closeSync } from 'node:fs';
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import { ClientConnection } from './client-connection.js';
import type { ClientSocket } from './client-socket.js';
import { ConnectionCounter, type ConnectionLimits, UNATTRIBUTED_UID } from './connection-limits.js';
import type { NativeIo } from './native-io.js';
import { RequestMemos } from './request-memo.js';
import type { ProxyContext, ProxySnapshot } from './types.js';
import { type PoolOptions, UpstreamPool } from './upstream-pool.js';

function closeFd(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already gone
  }
}

/** Where a worker listens: host/port (with SO_REUSEPORT where Node supports it) or an inherited fd. */
export type ListenSpec = { host: string; port: number; reusePort?: boolean } | { fd: number };

export interface ProxyListenerOptions {
  pool?: Partial<PoolOptions>;
  /**
   * Client sockets through the addon (Linux): no net.Socket per connection. Null: net.Server.
   * The listening socket is then the addon's (SO_REUSEPORT only with `reusePort`); a `{ fd }` spec
   * is used as given. The upstream connections to numeric addresses are then the addon's too
   * (unless `pool.io` says otherwise).
   */
  io?: NativeIo | null;
  /** This worker's connection limits (connection-limits.ts); none when absent (tests). */
  limits?: ConnectionLimits | null;
}

/**
 * The agent port in one worker thread: accepts connections and hands each to a ClientConnection.
 * Keeps the set of live connections so a shutdown can drain them.
 */
export class ProxyListener {
  readonly pool: UpstreamPool;
  private readonly server: net.Server | null = null;
  private readonly io: NativeIo | null;
  /** The listening fd polled by `io` (-1: none). */
  private listenFd = -1;
  private readonly live = new Set<ClientConnection>();
  /** Per caller and endpoint: the last head, decision and signed upstream head (see RequestMemos). */
  private readonly memos = new RequestMemos();
  /** Connections accepted while held (before the first snapshot); null when not holding. */
  private held: ClientConnection[] | null = null;
  private holdTimer: NodeJS.Timeout | null = null;
  private readonly counter: ConnectionCounter | null;

  constructor(
    readonly ctx: ProxyContext,
    opts: ProxyListenerOptions = {},
  ) {
    this.io = opts.io ?? null;
    // With the addon's client sockets, the upstream connections are the addon's too.
    this.pool = new UpstreamPool({ connectTimeoutMs: ctx.timeouts.connectMs, io: this.io, ...opts.pool });
    this.counter = opts.limits ? new ConnectionCounter(opts.limits) : null;
    if (this.io === null) {
      this.server = net.createServer({ noDelay: true }, (socket) => this.accepted(socket));
      this.server.on('error', () => {});
    }
  }

  /** True when client sockets go through the addon rather than net.Socket. */
  get native(): boolean {
    return this.io !== null;
  }

  private accepted(socket: ClientSocket): void {
    try {
      // Attribution and claims happen now, at accept, even while held (the caller may exit soon).
      const c = new ClientConnection(socket, this.ctx, this.pool, this.memos);
      const counter = this.counter;
      let uid = 0;
      if (counter !== null) {
        uid = c.callerUid;
        if (!counter.take(uid)) {
          // Unattributed connections share one non-root share; root's own direct queries (`gpa
          // --status`, doctor) must not be refused because someone filled it. Looked up only here,
          // over the limit: the peer's uid costs a /proc read.
          if (uid !== UNATTRIBUTED_UID || !c.directPeerIsRoot() || !counter.take(0)) {
            c.refuseOverLimit();
            return;
          }
          uid = 0;
        }
      }
      this.live.add(c);
      // One listener for both: a connection's place is given back when it goes.
      socket.once('close', () => {
        this.live.delete(c);
        counter?.release(uid);
      });
      if (this.held !== null) {
        socket.pause();
        this.held.push(c);
      }
    } catch {
      socket.destroy(); // nothing a client does may take the worker down
    }
  }

  /** Starts listening; resolves to the bound address. */
  listen(spec: ListenSpec): Promise<net.AddressInfo> {
    if (this.io !== null) return Promise.resolve().then(() => this.listenNative(this.io!, spec));
    const server = this.server!;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      const done = () => {
        server.off('error', onError);
        resolve(server.address() as net.AddressInfo);
      };
      if ('fd' in spec) server.listen({ fd: spec.fd }, done);
      else {
        // `reusePort` is honoured from Node 22.12/23.1; older Nodes ignore it (callers pass an fd there).
        const opts = { host: spec.host, port: spec.port, reusePort: spec.reusePort === true } as net.ListenOptions;
        server.listen(opts, done);
      }
    });
  }

  private listenNative(io: NativeIo, spec: ListenSpec): net.AddressInfo {
    if (this.listenFd !== -1) throw new Error('the listener is already listening');
    let fd: number;
    if ('fd' in spec) fd = spec.fd;
    else {
      try {
        // SO_REUSEPORT only when workers share the port: one agent's port is otherwise its own.
        fd = io.addon.createListener(spec.host, spec.port, 511, spec.reusePort === true);
      } catch (err) {
        const errno = (err as { errno?: unknown }).errno;
        if (typeof errno !== 'number' || errno <= 0) throw err;
        const code = getSystemErrorName(-errno);
        // The message net.Server gives, which status and the operator's docs recognise.
        throw Object.assign(new Error(`listen ${code}: ${(err as Error).message}`), { code, errno: -errno });
      }
    }
    try {
      io.listen(fd, (socket) => this.accepted(socket));
    } catch (err) {
      if (!('fd' in spec)) closeFd(fd);
      throw err;
    }
    this.listenFd = fd;
    const a = io.addon.ioAddress(fd, false);
    if (a === null) throw new Error('the listening socket has no address');
    return { address: a[0], port: a[1], family: a[0].includes(':') ? 'IPv6' : 'IPv4' };
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
    let closed = Promise.resolve();
    if (this.server !== null) {
      const server = this.server;
      closed = new Promise<void>((r) => server.close(() => r()));
    } else if (this.listenFd !== -1) {
      this.io!.unlisten(this.listenFd);
      this.listenFd = -1;
    }
    for (const c of this.live) c.closeIfIdle();
    const deadline = Date.now() + drainMs;
    while (this.live.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.live) c.socket.destroy();
    this.pool.close();
    await closed;
  }
}
