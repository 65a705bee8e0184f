import { Buffer } from 'node:buffer';
import net from 'node:net';
import type { NativeIo } from './native-io.js';
import type { ResponseHeadResult } from './response-head.js';

/** Where an endpoint's requests are forwarded. */
export interface UpstreamTarget {
  host: string;
  port: number;
}

export interface PoolOptions {
  connectTimeoutMs: number;
  /**
   * The thread's addon socket I/O: upstream connections to numeric addresses are opened and polled
   * by it (no net.Socket and its streams per request). Null: net.Socket.
   */
  io: NativeIo | null;
  /** A pooled connection unused this long is closed (below the host's own keep-alive timeout). */
  idleTimeoutMs: number;
  maxIdlePerTarget: number;
}

export const DEFAULT_POOL_OPTIONS: PoolOptions = {
  connectTimeoutMs: 5000,
  idleTimeoutMs: 4000,
  maxIdlePerTarget: 32,
  io: null,
};

/**
 * What the pool and an exchange use of an upstream socket: a net.Socket is one, and so is the
 * addon's NativeUpstreamSocket (native-io.ts).
 */
export interface UpstreamSocket {
  readonly destroyed: boolean;
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'end' | 'close' | 'timeout' | 'drain', listener: () => void): this;
  once(event: 'connect', listener: () => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
  off(event: 'error', listener: (err: Error) => void): this;
  setNoDelay(noDelay?: boolean): this;
  setTimeout(ms: number): this;
  write(data: Uint8Array | string, encoding?: 'latin1'): boolean;
  cork(): void;
  /** net.Socket's returns nothing; the addon's says whether to wait for 'drain'. */
  uncork(): unknown;
  pause(): this;
  resume(): this;
  end(): this;
  destroy(): this;
}

/** What an upstream connection reports to whoever currently owns it. */
export interface UpstreamOwner {
  onUpstreamData(chunk: Buffer): void;
  onUpstreamEnd(): void;
  onUpstreamError(err: Error): void;
  onUpstreamTimeout(): void;
  onUpstreamDrain(): void;
}

/**
 * One upstream socket. Its listeners are installed once and dispatch to the current owner, so
 * lending it to a request costs a field write rather than listener churn.
 */
export class UpstreamConn {
  owner: UpstreamOwner | null = null;
  /** True once it has carried a request (a failure before any response byte may be a stale reuse). */
  used = false;
  closed = false;
  /** How long the current owner may wait without a byte from upstream. */
  responseMs = 0;
  /**
   * The last response head this connection parsed, as bytes, with its parse (exchange.ts): a host
   * answers a repeated request with the same head until its Date changes, and the same bytes parse
   * the same way.
   */
  headMemo: { bytes: Buffer; method: string; result: ResponseHeadResult } | null = null;
  /** Consecutive socket-timeout ticks without a byte (the socket's inactivity timer is the clock). */
  private quietTicks = 0;
  private tickMs = 0;

  constructor(
    readonly socket: UpstreamSocket,
    readonly key: string,
    private readonly pool: UpstreamPool,
  ) {
    socket.setNoDelay(true);
    socket.on('end', () => {
      this.closed = true;
      const o = this.owner;
      this.owner = null;
      this.pool.forget(this);
      if (o !== null) o.onUpstreamEnd();
      socket.end();
    });
    socket.on('error', (err: Error) => {
      this.closed = true;
      const o = this.owner;
      this.owner = null;
      this.pool.forget(this);
      if (o !== null) o.onUpstreamError(err);
    });
    socket.on('close', () => {
      this.closed = true;
      const o = this.owner;
      this.owner = null;
      this.pool.forget(this);
      if (o !== null) o.onUpstreamError(new Error('upstream connection closed'));
    });
    socket.on('timeout', () => this.onQuiet());
    socket.on('drain', () => this.owner?.onUpstreamDrain());
  }

  /**
   * Bytes from upstream, read by libuv straight into the pool's shared buffer (the socket's
   * `onread`): no per-read 64 KiB allocation and no stream machinery. The bytes are copied out
   * before anyone sees them, since the buffer is reused by the next read of any upstream socket.
   */
  onRead(n: number, buf: Buffer): void {
    this.onChunk(Buffer.from(buf.subarray(0, n)));
  }

  /**
   * Bytes from upstream (the addon's sockets deliver views into their read slab: a receiver that
   * keeps them past this call copies them, ownBytes).
   */
  onChunk(chunk: Buffer): void {
    this.quietTicks = 0;
    if (this.owner !== null) this.owner.onUpstreamData(chunk);
    else this.socket.destroy(); // bytes nobody asked for: the connection is out of sync
  }

  /**
   * Lends the connection to `owner`, which may wait `responseMs` for upstream bytes. The socket's
   * inactivity timer is armed once with a tick that serves both the response and the idle deadline,
   * instead of re-arming a timer (a new Timeout object) twice per request.
   */
  lend(owner: UpstreamOwner, responseMs: number): void {
    this.owner = owner;
    this.responseMs = responseMs;
    this.quietTicks = 0;
    const tick = Math.min(responseMs, this.pool.idleTimeoutMs);
    if (tick !== this.tickMs) {
      this.tickMs = tick;
      this.socket.setTimeout(tick);
    }
  }

  /** Back in the pool: the idle clock starts now. */
  idle(): void {
    this.owner = null;
    this.quietTicks = 0;
    if (this.tickMs === 0) {
      this.tickMs = this.pool.idleTimeoutMs;
      this.socket.setTimeout(this.tickMs);
    }
  }

  /** The socket saw no traffic for one tick: count it against the owner's or the idle deadline. */
  private onQuiet(): void {
    const quietMs = ++this.quietTicks * this.tickMs;
    const limit = this.owner !== null ? this.responseMs : this.pool.idleTimeoutMs;
    if (quietMs >= limit) {
      if (this.owner !== null) this.owner.onUpstreamTimeout();
      else this.socket.destroy();
      return;
    }
    this.socket.setTimeout(this.tickMs); // a fired inactivity timer is re-armed only by traffic
  }

  /** Stops lending this connection and destroys it (its state is unknown). */
  destroy(): void {
    this.owner = null;
    this.closed = true;
    this.socket.destroy();
  }
}

/** `host:port` per target object: built once, not concatenated (and re-hashed) on every request. */
const targetKeys = new WeakMap<UpstreamTarget, string>();
function keyOf(target: UpstreamTarget): string {
  let key = targetKeys.get(target);
  if (key === undefined) {
    key = target.host + ':' + target.port;
    targetKeys.set(target, key);
  }
  return key;
}

/** Keep-alive connections per upstream target, reused most-recently-used first. */
export class UpstreamPool {
  private readonly idle = new Map<string, UpstreamConn[]>();
  private readonly options: PoolOptions;
  /** One read buffer for every upstream socket of this thread (reads are handled one at a time). */
  private readonly readBuffer = Buffer.allocUnsafe(64 * 1024);

  constructor(options: Partial<PoolOptions> = {}) {
    this.options = { ...DEFAULT_POOL_OPTIONS, ...options };
  }

  get idleTimeoutMs(): number {
    return this.options.idleTimeoutMs;
  }

  /**
   * Lends an idle connection to `owner` or opens a new one. `cb` gets the connection once it is
   * writable, or an error tagged `code: 'ETIMEDOUT_CONNECT'` when the connect timed out.
   */
  acquire(
    target: UpstreamTarget,
    owner: UpstreamOwner,
    cb: (err: Error | null, conn: UpstreamConn | null) => void,
    responseMs = 30_000,
  ): void {
    const key = keyOf(target);
    const list = this.idle.get(key);
    while (list !== undefined && list.length > 0) {
      const conn = list.pop()!;
      if (conn.closed || conn.socket.destroyed) continue;
      conn.lend(owner, responseMs);
      cb(null, conn);
      return;
    }
    let conn: UpstreamConn | null = null;
    let socket: UpstreamSocket;
    const io = this.options.io;
    // A numeric address without an IPv6 zone (`%eth0`, which only net.connect resolves).
    if (io !== null && net.isIP(target.host) !== 0 && !target.host.includes('%')) {
      try {
        socket = io.connect(target.host, target.port);
      } catch (err) {
        process.nextTick(cb, err as Error, null); // failed at once (no route, out of fds)
        return;
      }
      socket.on('data', (chunk: Buffer) => conn?.onChunk(chunk));
    } else {
      socket = net.connect({
        host: target.host,
        port: target.port,
        onread: {
          buffer: this.readBuffer,
          callback: (n: number, buf: Uint8Array) => {
            conn?.onRead(n, buf as Buffer);
            return true;
          },
        },
      });
    }
    conn = new UpstreamConn(socket, key, this);
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      socket.destroy();
      const e = new Error(`connect to ${key} timed out`) as Error & { code: string };
      e.code = 'ETIMEDOUT_CONNECT';
      cb(e, null);
    }, this.options.connectTimeoutMs);
    const connectFailed = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      cb(err, null);
    };
    socket.once('error', connectFailed);
    socket.once('connect', () => {
      socket.off('error', connectFailed);
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      conn.lend(owner, responseMs);
      cb(null, conn);
    });
  }

  /** Returns a connection whose last exchange ended cleanly; anything doubtful is destroyed. */
  release(conn: UpstreamConn): void {
    conn.owner = null;
    conn.used = true;
    if (conn.closed || conn.socket.destroyed) return;
    let list = this.idle.get(conn.key);
    if (list === undefined) this.idle.set(conn.key, (list = []));
    if (list.length >= this.options.maxIdlePerTarget) {
      conn.destroy();
      return;
    }
    conn.idle();
    list.push(conn);
  }

  /** Drops a connection from the idle list (it closed or errored). */
  forget(conn: UpstreamConn): void {
    const list = this.idle.get(conn.key);
    if (list === undefined) return;
    const i = list.indexOf(conn);
    if (i !== -1) list.splice(i, 1);
  }

  /** Number of idle pooled connections (for tests and metrics). */
  idleCount(): number {
    let n = 0;
    for (const l of this.idle.values()) n += l.length;
    return n;
  }

  /** Closes every idle connection (shutdown). */
  close(): void {
    for (const list of this.idle.values()) for (const c of list.splice(0)) c.destroy();
  }
}
