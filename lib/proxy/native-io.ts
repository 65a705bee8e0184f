import { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { getSystemErrorName } from 'node:util';
import type { ClientSocketIo, IoEventHandler } from '../redirector/index.js';
import type { ClientSocket } from './client-socket.js';

// The addon's client-socket I/O (native/src/posix/client_io.h, Linux builds) polls the listening fd
// and every accepted fd on this thread's libuv loop and reports each event to one function per
// thread, onEvent(kind, fd, arg). Event kinds (JsIoSink::Kind in native/src/addon.cc):
const ACCEPT = 0;
const DATA = 1;
const END = 2;
const ERROR = 3;
const DRAIN = 4;
const CONNECT = 5;

/** write() asks the caller to wait for 'drain' from this many queued bytes (net.Socket's default). */
const HIGH_WATER_MARK = 16 * 1024;
/** After a failed accept (out of fds, memory), accepting resumes after this pause. */
const ACCEPT_RETRY_MS = 100;

let threadIo: NativeIo | null = null;

/**
 * The addon's read slabs seen so far (weakly: a slab goes once no view of it is left). Recognised by
 * identity, not by size: Node 24's own Buffer pool is 64 KiB too.
 */
const slabs = new WeakSet<ArrayBuffer>();
let lastSlab: ArrayBuffer | null = null;

/**
 * `buf`, or a copy of it when it is a view into one of the addon's read slabs: for bytes kept past
 * the event that delivered them (a client's partial request head), so a few kept bytes do not hold
 * a whole slab.
 */
export function ownBytes(buf: Buffer): Buffer {
  return buf.length < buf.buffer.byteLength && slabs.has(buf.buffer as ArrayBuffer) ? Buffer.from(buf) : buf;
}

/** This thread's NativeIo (the addon keeps one event function per thread). */
export function nativeIoFor(addon: ClientSocketIo): NativeIo {
  if (threadIo === null || threadIo.addon !== addon) threadIo = new NativeIo(addon);
  return threadIo;
}

/** Accepted sockets of this thread by fd, and the listeners' connection callbacks. */
export class NativeIo {
  private readonly sockets: (NativeClientSocket | undefined)[] = [];
  private readonly acceptors = new Map<number, (socket: NativeClientSocket) => void>();
  private readonly onEvent: IoEventHandler = (kind, fd, arg, offset, length) =>
    this.dispatch(kind, fd, arg, offset, length);

  constructor(readonly addon: ClientSocketIo) {}

  /** Accepts on the listening `fd`; each connection goes to `onConnection`. Throws when it cannot poll it. */
  listen(fd: number, onConnection: (socket: NativeClientSocket) => void): void {
    this.acceptors.set(fd, onConnection);
    try {
      this.addon.ioListen(fd, this.onEvent);
    } catch (err) {
      this.acceptors.delete(fd);
      throw err;
    }
  }

  /** Stops accepting and closes the listening fd; accepted connections stay open. */
  unlisten(fd: number): void {
    if (this.acceptors.delete(fd)) this.addon.ioUnlisten(fd);
  }

  /**
   * Opens an outbound connection to a numeric IPv4/IPv6 address (the data plane's upstream), on
   * this thread's loop: 'connect' once established, 'error' (then 'close') when it fails.
   */
  connect(address: string, port: number): NativeUpstreamSocket {
    const fd = this.addon.ioConnect(address, port, this.onEvent);
    if (fd < 0) {
      const code = getSystemErrorName(fd);
      throw Object.assign(new Error(`connect ${code} ${address}:${port}`), { code, errno: fd });
    }
    const s = new NativeUpstreamSocket(this, fd, address, port);
    this.sockets[fd] = s;
    return s;
  }

  /** Called by a socket's destroy(): its fd is closed and may be reused by the next accept. */
  release(socket: NativeClientSocket): void {
    if (this.sockets[socket.fd] === socket) this.sockets[socket.fd] = undefined;
    this.addon.ioClose(socket.fd);
  }

  private dispatch(kind: number, fd: number, arg: unknown, offset?: number, length?: number): void {
    if (kind === DATA) {
      const s = this.sockets[fd];
      if (s === undefined) return;
      try {
        // A view into the addon's read slab (see JsIoSink in native/src/addon.cc): whoever keeps it
        // past this event keeps the slab alive, so keepers copy (ownBytes).
        const ab = arg as ArrayBuffer;
        // A read above the slab limit comes in a buffer of its own (offset 0, the whole of it).
        if (ab !== lastSlab && length! < ab.byteLength) {
          lastSlab = ab;
          slabs.add(ab);
        }
        s.onData(Buffer.from(ab, offset, length));
      } catch {
        s.destroy(); // nothing a client sends may take the worker down
      }
      return;
    }
    if (kind === ACCEPT) {
      this.accept(fd, arg as number);
      return;
    }
    const s = this.sockets[fd];
    if (s === undefined) {
      if (kind === ERROR && this.acceptors.has(fd)) this.acceptFailed(fd);
      return;
    }
    try {
      if (kind === END) s.onEnd();
      else if (kind === ERROR) s.onError(arg as number);
      else if (kind === DRAIN) s.onDrain();
      else if (kind === CONNECT) s.onConnect();
    } catch {
      s.destroy();
    }
  }

  private accept(listenFd: number, fd: number): void {
    const s = new NativeClientSocket(this, fd);
    this.sockets[fd] = s;
    const onConnection = this.acceptors.get(listenFd);
    if (onConnection === undefined) {
      s.destroy();
      return;
    }
    try {
      onConnection(s);
    } catch {
      s.destroy();
    }
  }

  private acceptFailed(listenFd: number): void {
    // The addon stopped accepting on this fd (EMFILE and the like): try again after a pause, as
    // long as the listener is still ours. Clients wait in the kernel's backlog meanwhile.
    const t = setTimeout(() => {
      if (this.acceptors.has(listenFd)) this.addon.ioSetReading(listenFd, true);
    }, ACCEPT_RETRY_MS);
    t.unref();
  }
}

function emitClose(s: NativeClientSocket): void {
  s.emit('close');
}

/**
 * A client connection accepted by the addon: the net.Socket subset ClientConnection uses
 * (ClientSocket), with net.Socket's semantics where it matters: reads arrive as 'data' chunks,
 * write() returns false above 16 KiB queued and 'drain' follows, the peer's FIN closes the socket
 * once everything queued is sent (no half-open connections), 'close' comes asynchronously after
 * destroy(), and an idle timeout emits 'timeout' once (re-armed by activity or setTimeout).
 */
export class NativeClientSocket extends EventEmitter implements ClientSocket {
  destroyed = false;
  writableLength = 0;
  protected ended = false;
  private paused = false;
  private needDrain = false;
  private closeAfterDrain = false;
  private timeoutMs = 0;
  private timer: NodeJS.Timeout | null = null;
  private lastActive = 0;
  private peer: [string, number] | null | undefined;
  private local: [string, number] | null | undefined;

  constructor(
    private readonly io: NativeIo,
    readonly fd: number,
  ) {
    super();
  }

  /** write() sends at once or copies what is left into the addon's queue: the caller keeps its buffer. */
  get copiesWrites(): boolean {
    return true;
  }

  /** An outbound socket's connect completed (NativeUpstreamSocket). */
  onConnect(): void {}

  // Called by NativeIo

  onData(chunk: Buffer): void {
    if (this.destroyed) return;
    if (this.timeoutMs > 0) this.touch();
    this.emit('data', chunk);
  }

  onEnd(): void {
    // net.Socket without allowHalfOpen: the peer's FIN ends our side too, after what is queued.
    this.destroySoon();
  }

  onError(errno: number): void {
    if (this.destroyed) return;
    if (this.listenerCount('error') === 0) {
      this.destroy();
      return;
    }
    const code = getSystemErrorName(-Math.abs(errno));
    const err = Object.assign(new Error(`client socket: ${code}`), { code, errno: -Math.abs(errno) });
    this.emit('error', err);
  }

  onDrain(): void {
    this.writableLength = 0;
    if (this.destroyed) return;
    if (this.closeAfterDrain) {
      this.destroy();
      return;
    }
    if (this.needDrain) {
      this.needDrain = false;
      this.emit('drain');
    }
  }

  // ClientSocket

  get remoteAddress(): string | undefined {
    return this.address(true)?.[0];
  }

  get remotePort(): number | undefined {
    return this.address(true)?.[1];
  }

  get localAddress(): string | undefined {
    return this.address(false)?.[0];
  }

  get localPort(): number | undefined {
    return this.address(false)?.[1];
  }

  /** One end's [address, port], read from the fd once; null once closed or reset. */
  private address(peer: boolean): [string, number] | null {
    const known = peer ? this.peer : this.local;
    if (known !== undefined) return known;
    const a = this.destroyed ? null : this.io.addon.ioAddress(this.fd, peer);
    if (peer) this.peer = a;
    else this.local = a;
    return a;
  }

  setNoDelay(): this {
    return this; // the addon sets TCP_NODELAY on the listener, which every accepted socket inherits
  }

  setTimeout(ms: number): this {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.timeoutMs = Number.isFinite(ms) && ms > 0 ? ms : 0;
    if (this.timeoutMs > 0 && !this.destroyed) {
      this.lastActive = performance.now();
      this.arm(this.timeoutMs);
    }
    return this;
  }

  /** Writes bytes, or a string as UTF-8 (latin1: one byte per code point, no Buffer in between). */
  write(data: Uint8Array | string, encoding?: 'latin1' | 'utf8'): boolean {
    if (this.destroyed || this.ended) return false;
    const queued =
      typeof data !== 'string'
        ? this.io.addon.ioWrite(this.fd, data)
        : encoding === 'latin1'
          ? this.io.addon.ioWriteLatin1(this.fd, data)
          : this.io.addon.ioWrite(this.fd, Buffer.from(data));
    return this.wrote(queued);
  }

  /** What ioWrite returned: bytes still queued, or -errno. */
  private wrote(queued: number): boolean {
    if (this.timeoutMs > 0) this.touch();
    if (queued < 0) {
      // Broken connection (reset, EPIPE): reported like net.Socket does, after this call returns.
      process.nextTick(() => this.onError(queued));
      return false;
    }
    this.writableLength = queued;
    if (queued >= HIGH_WATER_MARK) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  end(data?: Uint8Array | string): this {
    if (this.destroyed || this.ended) return this;
    if (data !== undefined) this.write(data);
    this.ended = true;
    this.io.addon.ioEnd(this.fd);
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.writableLength = 0;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.io.release(this);
    process.nextTick(emitClose, this);
    return this;
  }

  destroySoon(): void {
    if (this.destroyed) return;
    if (this.writableLength === 0) {
      this.destroy();
      return;
    }
    if (!this.ended) {
      this.ended = true;
      this.io.addon.ioEnd(this.fd);
    }
    this.closeAfterDrain = true;
  }

  pause(): this {
    if (!this.paused && !this.destroyed) {
      this.paused = true;
      this.io.addon.ioSetReading(this.fd, false);
    }
    return this;
  }

  resume(): this {
    if (this.paused && !this.destroyed) {
      this.paused = false;
      this.io.addon.ioSetReading(this.fd, true);
    }
    return this;
  }

  isPaused(): boolean {
    return this.paused;
  }

  // Idle timeout: one timer per socket, re-armed lazily (activity only records the time).

  private touch(): void {
    this.lastActive = performance.now();
    if (this.timer === null && !this.destroyed) this.arm(this.timeoutMs);
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.onTimer(), ms);
    this.timer.unref();
  }

  private onTimer(): void {
    this.timer = null;
    if (this.destroyed || this.timeoutMs === 0) return;
    const idle = performance.now() - this.lastActive;
    if (idle + 1 < this.timeoutMs) {
      this.arm(this.timeoutMs - idle);
      return;
    }
    this.emit('timeout');
  }
}

/**
 * An upstream connection opened by the addon (NativeIo.connect): the net.Socket subset the upstream
 * pool uses. Unlike a client socket it reports the peer's FIN as 'end' (then closes once its queue
 * is sent), closes itself after an 'error' as net.Socket does, and can be corked: writes between
 * cork() and uncork() leave in one write.
 */
export class NativeUpstreamSocket extends NativeClientSocket {
  connecting = true;
  private corked: Uint8Array[] | null = null;
  private corkedBytes = 0;

  constructor(
    io: NativeIo,
    fd: number,
    readonly remoteHost: string,
    readonly remoteTcpPort: number,
  ) {
    super(io, fd);
  }

  override onConnect(): void {
    if (this.destroyed) return;
    this.connecting = false;
    this.emit('connect');
  }

  override onEnd(): void {
    if (this.destroyed) return;
    this.emit('end');
    this.destroySoon();
  }

  override onError(errno: number): void {
    if (this.destroyed) return;
    const code = getSystemErrorName(-Math.abs(errno));
    const what = this.connecting
      ? `connect ${code} ${this.remoteHost}:${this.remoteTcpPort}`
      : `upstream socket: ${code}`;
    const err = Object.assign(new Error(what), { code, errno: -Math.abs(errno) });
    if (this.listenerCount('error') > 0) this.emit('error', err);
    this.destroy();
  }

  /** Not while corked: the corked parts are the caller's buffers until uncork(). */
  override get copiesWrites(): boolean {
    return this.corked === null;
  }

  cork(): void {
    this.corked ??= [];
  }

  /** Sends what was written while corked, in one write; false as write() when the caller should wait for 'drain'. */
  uncork(): boolean {
    const parts = this.corked;
    if (parts === null) return this.writableLength < HIGH_WATER_MARK;
    this.corked = null;
    this.corkedBytes = 0;
    if (parts.length === 0) return this.writableLength < HIGH_WATER_MARK;
    return super.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  }

  /** While corked, the bytes are held here (net.Socket's answer: false from 16 KiB held or queued). */
  override write(data: Uint8Array | string, encoding?: 'latin1' | 'utf8'): boolean {
    if (this.corked !== null) {
      if (this.destroyed || this.ended) return false;
      const bytes = typeof data === 'string' ? Buffer.from(data, encoding ?? 'utf8') : data;
      this.corked.push(bytes);
      this.corkedBytes += bytes.length;
      return this.corkedBytes + this.writableLength < HIGH_WATER_MARK;
    }
    return super.write(data, encoding);
  }

  override end(data?: Uint8Array | string): this {
    if (this.corked !== null) this.uncork(); // what was corked leaves before the FIN
    return super.end(data);
  }
}
