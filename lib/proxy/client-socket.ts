import type { Buffer } from 'node:buffer';

/**
 * What a ClientConnection needs of its client's socket: the subset of net.Socket it uses, so a
 * net.Socket is one, and so is a NativeClientSocket (native-io.ts: the addon's fd I/O, Linux).
 * Events: 'data' (chunk), 'drain', 'timeout', 'error', 'close', with net.Socket's meaning.
 */
export interface ClientSocket {
  /** The accepted socket's fd when known without Node internals (native sockets). */
  readonly fd?: number;
  /**
   * True when write() takes a copy of what it cannot send at once (the addon's sockets), so the
   * caller may reuse its buffer as soon as write() returns. net.Socket keeps the buffer: absent.
   */
  readonly copiesWrites?: boolean;
  readonly destroyed: boolean;
  /** Bytes accepted by write() that are not in the kernel yet. */
  readonly writableLength: number;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'drain' | 'timeout' | 'close', listener: () => void): this;
  once(event: 'close', listener: () => void): this;
  setNoDelay(noDelay?: boolean): this;
  /** Emits 'timeout' once after `ms` without reads or writes (0 disables), as net.Socket does. */
  setTimeout(ms: number): this;
  /** False when the caller should wait for 'drain' before writing more. */
  write(data: Uint8Array | string): boolean;
  /** Writes `data`, then half-closes once everything queued is sent. */
  end(data?: Uint8Array | string): this;
  destroy(): this;
  /** Closes once everything queued is sent. */
  destroySoon(): void;
  pause(): this;
  resume(): this;
  isPaused(): boolean;
}
