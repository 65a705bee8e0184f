import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { ChunkedDecoder } from './chunked.js';
import type { ClientSocket } from './client-socket.js';
import { ownBytes } from './native-io.js';
import { parseResponseHead, type ResponseHead, type ResponseHeadResult } from './response-head.js';
import { PASS_THROUGH_MARKER } from './responses.js';
import type { UpstreamConn, UpstreamOwner, UpstreamPool, UpstreamTarget } from './upstream-pool.js';

/** The client side of an exchange (a ClientConnection). */
export interface ExchangeHost {
  readonly socket: ClientSocket;
  readonly clientVersion: 10 | 11;
  /** The response was fully relayed; `closeClient` when the client connection must end now. */
  exchangeFinished(ex: Exchange, closeClient: boolean): void;
  /** Nothing was sent to the client yet: answer with an agent error and close. */
  exchangeFailed(ex: Exchange, status: number, code: string, detail: string): void;
  /** The exchange broke mid-response: the client connection can only be dropped. */
  exchangeAborted(ex: Exchange): void;
  /** Streaming uploads: upstream can take more body bytes. */
  resumeClient(): void;
}

/** Up to this many body bytes are copied next to their head so both leave in one write. */
const JOIN_LIMIT = 64 * 1024;
/** Response heads up to this size are remembered per upstream connection (parseHead). */
const HEAD_MEMO_BYTES = 1024;

/** `head` (latin1) followed by `buf[s, e)` in one new buffer. */
function joined(head: string, buf: Buffer, s: number, e: number): Buffer {
  const out = Buffer.allocUnsafe(head.length + e - s);
  out.write(head, 0, 'latin1');
  buf.copy(out, head.length, s, e);
  return out;
}

/** Writes `buf[s, e)` to `sock` (nothing when empty). */
function send(sock: ClientSocket, buf: Buffer, s: number, e: number): boolean {
  return e > s ? sock.write(s === 0 && e === buf.length ? buf : buf.subarray(s, e)) : true;
}

const STATUS_PREFIX = Buffer.from('HTTP/1.1 ', 'latin1');
// What the agent appends to every relayed head: the pass-through marker, its framing, the blank line.
const TAIL_KEEP = Buffer.from(PASS_THROUGH_MARKER + '\r\n', 'latin1');
const TAIL_CLOSE = Buffer.from(PASS_THROUGH_MARKER + 'connection: close\r\n\r\n', 'latin1');
const TAIL_KEEP_10 = Buffer.from(PASS_THROUGH_MARKER + 'connection: keep-alive\r\n\r\n', 'latin1');

function rangesLength(r: number[]): number {
  let n = 0;
  for (let i = 0; i < r.length; i += 2) n += r[i + 1]! - r[i]!;
  return n;
}

/** Ranges up to this long are copied byte by byte: `Buffer#copy` of a part makes a view object each time. */
const SMALL_COPY = 64;

/** Copies `src[s, e)` into `out` at `at`; returns the end. */
function copyBytes(src: Buffer, s: number, e: number, out: Buffer, at: number): number {
  if (e - s > SMALL_COPY) return at + src.copy(out, at, s, e);
  for (let i = s; i < e; i++) out[at++] = src[i]!;
  return at;
}

function copyRanges(src: Buffer, r: number[], out: Buffer, at: number): number {
  for (let i = 0; i < r.length; i += 2) at = copyBytes(src, r[i]!, r[i + 1]!, out, at);
  return at;
}

/**
 * The response head (and the first body bytes) are assembled here when the client's socket copies
 * what it cannot send at once (the addon's): one buffer per thread instead of one per response.
 */
let headScratch = Buffer.allocUnsafeSlow(16 * 1024);

function headBuffer(client: ClientSocket, length: number): Buffer {
  if (client.copiesWrites !== true) return Buffer.allocUnsafe(length);
  if (headScratch.length < length) headScratch = Buffer.allocUnsafeSlow(Math.max(length, headScratch.length * 2));
  return headScratch;
}

/**
 * One forwarded request: borrows a pooled upstream connection, writes the prepared head and body,
 * parses the response head, and relays the body with the framing it has (length, chunked or
 * close-delimited). It never holds a whole response: bytes go out as they come, with backpressure.
 */
export class Exchange implements UpstreamOwner {
  conn: UpstreamConn | null = null;
  status = 0;
  upstreamError: 'error' | 'timeout' | null = null;
  sentAt = 0;
  headAt = 0;
  private respBuf: Buffer | null = null;
  private resp: ResponseHead | null = null;
  private remaining = 0;
  private decoder: ChunkedDecoder | null = null;
  private closeAfter = false;
  private retried = false;
  private requestComplete: boolean;
  private queue: Buffer[] | null = null;
  private finished = false;
  private unusable = false;
  /** HTTP/1.0 client of a chunked response: writes its decoded bytes (made once, for such responses only). */
  private writeDecoded: ((b: Buffer, s: number, e: number) => void) | undefined;
  /** A write of decoded bytes found the client's buffer full: pause the upstream. */
  private clientFull = false;

  constructor(
    private readonly host: ExchangeHost,
    private readonly pool: UpstreamPool,
    private readonly target: UpstreamTarget,
    private readonly method: string,
    /** The upstream request head: text (latin1) or, when reused across requests, its bytes. */
    private readonly head: string | Buffer,
    /** The whole body when buffered; null when it is streamed with writeBody/endBody. */
    private readonly body: Buffer | null,
    private readonly responseMs: number,
    private readonly clientWantsClose: boolean,
  ) {
    this.requestComplete = body !== null;
  }

  start(): void {
    this.pool.acquire(
      this.target,
      this,
      (err, conn) => {
        if (this.finished) {
          if (conn !== null) this.pool.release(conn);
          return;
        }
        if (err !== null || conn === null) {
          const timedOut = (err as { code?: string } | null)?.code === 'ETIMEDOUT_CONNECT';
          this.upstreamError = timedOut ? 'timeout' : 'error';
          this.fail(timedOut ? 503 : 502, timedOut ? 'upstream_connect_timeout' : 'upstream_unreachable', String(err));
          return;
        }
        this.conn = conn;
        const s = conn.socket;
        // Head and body in one write (one syscall, one segment) unless the body is large.
        const body = this.body;
        const head = this.head;
        if (this.queue !== null) {
          // A streamed upload whose first bytes waited for the connect (the client was paused then).
          s.cork();
          let room = s.write(head, 'latin1');
          for (const b of this.queue.splice(0)) room = s.write(b);
          // The addon's socket says after the flush whether to wait for 'drain' (only then does one
          // come); net.Socket answered in its writes.
          const flushed = s.uncork();
          if (typeof flushed === 'boolean') room = flushed;
          this.queue = null;
          // Nothing else resumes the client when the flush left room ('drain' only follows a full buffer).
          if (room) this.host.resumeClient();
        } else if (body === null || body.length === 0) s.write(head, 'latin1');
        else if (body.length <= JOIN_LIMIT && typeof head === 'string') s.write(joined(head, body, 0, body.length));
        else {
          s.cork();
          s.write(head, 'latin1');
          s.write(body);
          s.uncork();
        }
        this.sentAt = performance.now();
      },
      this.responseMs,
    );
  }

  /** Streams part of an upload body; returns false when the caller should pause the client. */
  writeBody(chunk: Buffer): boolean {
    if (this.conn === null) {
      (this.queue ??= []).push(ownBytes(chunk));
      return false;
    }
    return this.conn.socket.write(chunk);
  }

  /** The streamed upload body is complete. */
  endBody(): void {
    this.requestComplete = true;
  }

  /** The client went away: drop the upstream connection (its exchange is incomplete). */
  abort(): void {
    if (this.finished) return;
    this.finished = true;
    this.conn?.destroy();
    this.conn = null;
  }

  onUpstreamData(chunk: Buffer): void {
    if (this.finished) return;
    if (this.resp !== null) {
      this.relayBody(chunk, 0);
      return;
    }
    let buf = this.respBuf === null ? chunk : Buffer.concat([this.respBuf, chunk]);
    for (;;) {
      const r = this.parseHead(buf);
      if (r.kind === 'incomplete') {
        this.respBuf = ownBytes(buf);
        return;
      }
      if (r.kind === 'error') {
        this.upstreamError = 'error';
        this.fail(502, 'upstream_bad_response', r.reason);
        return;
      }
      const st = r.head.status;
      if (st >= 100 && st < 200) {
        // Interim responses (the agent strips Expect, so rare): not relayed; 101 cannot be honoured.
        if (st === 101) {
          this.fail(502, 'upstream_bad_response', 'unexpected protocol switch');
          return;
        }
        buf = buf.subarray(r.headEnd);
        continue;
      }
      this.respBuf = null;
      this.startResponse(r.head);
      this.relayBody(buf, r.headEnd, true);
      return;
    }
  }

  /**
   * The response head at the start of `buf`: the connection's last parse when the bytes are the
   * same (a repeated request within the host's Date second), else a fresh one, remembered when the
   * head is small. A head object is never modified after its parse, so sharing it is safe.
   */
  private parseHead(buf: Buffer): ResponseHeadResult {
    const conn = this.conn;
    const memo = conn === null ? null : conn.headMemo;
    if (memo !== null && memo.method === this.method) {
      const n = memo.bytes.length;
      if (buf.length >= n && buf.compare(memo.bytes, 0, n, 0, n) === 0) return memo.result;
    }
    const r = parseResponseHead(buf, 0, buf.length, this.method);
    if (r.kind === 'ok' && conn !== null && r.headEnd <= HEAD_MEMO_BYTES)
      conn.headMemo = { bytes: Buffer.from(buf.subarray(0, r.headEnd)), method: this.method, result: r };
    return r;
  }

  /** Takes the response head: framing state for the body, and whether the client connection ends. */
  private startResponse(head: ResponseHead): void {
    this.resp = head;
    this.status = head.status;
    this.headAt = performance.now();
    const v10 = this.host.clientVersion === 10;
    if (head.framing === 'chunked') {
      this.decoder = new ChunkedDecoder();
      if (v10) {
        const client = this.host.socket;
        this.writeDecoded = (b, s, e) => {
          if (!client.write(b.subarray(s, e))) this.clientFull = true;
        };
      }
    } else if (head.framing === 'length') this.remaining = head.contentLength;
    this.closeAfter =
      this.clientWantsClose || head.framing === 'close' || (head.framing === 'chunked' && v10) || !this.requestComplete;
  }

  /**
   * Writes the client's response head, followed in the same buffer by `buf[s, e)` (the first body
   * bytes) when they are few: `HTTP/1.1`, the upstream's status code and reason, the header lines
   * the agent keeps copied as they came (`src` is the buffer the head was parsed from), the
   * pass-through marker and the agent's framing.
   */
  private writeHead(src: Buffer, s: number, e: number): boolean {
    const head = this.resp!;
    const v10 = this.host.clientVersion === 10;
    const tail = this.closeAfter ? TAIL_CLOSE : v10 ? TAIL_KEEP_10 : TAIL_KEEP;
    const [rs, re] = head.statusRest;
    // The transfer codings go with a body relayed as it came (chunked, or coded and close-delimited);
    // an HTTP/1.0 client gets the chunked coding removed and no Transfer-Encoding.
    const te = (head.framing === 'chunked' || head.framing === 'close') && !v10 ? head.te : null;
    const body = e - s <= JOIN_LIMIT ? e - s : 0;
    const length =
      STATUS_PREFIX.length + (re - rs) + rangesLength(head.keep) + (te ? rangesLength(te) : 0) + tail.length + body;
    const client = this.host.socket;
    const buf = headBuffer(client, length);
    let at = STATUS_PREFIX.copy(buf, 0);
    at = copyBytes(src, rs, re, buf, at);
    at = copyRanges(src, head.keep, buf, at);
    if (te) at = copyRanges(src, te, buf, at);
    at += tail.copy(buf, at);
    if (body > 0) copyBytes(src, s, e, buf, at);
    const out = buf.length === length ? buf : buf.subarray(0, length);
    if (body > 0 || e <= s) return client.write(out);
    client.write(out);
    return client.write(src.subarray(s, e));
  }

  /**
   * Relays body bytes `buf[start..]` to the client. On the first call (`first`, `buf` holding the
   * head) the head goes out in the same write as the body bytes that came with it.
   */
  private relayBody(buf: Buffer, start: number, first = false): void {
    const resp = this.resp!;
    const client = this.host.socket;
    let ok = true;
    switch (resp.framing) {
      case 'none':
        if (first) this.writeHead(buf, 0, 0);
        if (start < buf.length) this.unusable = true;
        this.finish();
        return;
      case 'length': {
        const n = Math.min(this.remaining, buf.length - start);
        ok = first ? this.writeHead(buf, start, start + n) : send(client, buf, start, start + n);
        this.remaining -= n;
        if (this.remaining === 0) {
          if (start + n < buf.length) this.unusable = true;
          this.finish();
          return;
        }
        break;
      }
      case 'chunked': {
        const dec = this.decoder!;
        const v10 = this.host.clientVersion === 10;
        if (v10 && first) this.writeHead(buf, 0, 0);
        const end = dec.feed(buf, start, buf.length, v10 ? this.writeDecoded : undefined);
        if (end === -1) {
          // Nothing sent yet: the client gets a clean 502 instead of a truncated response.
          if (!v10 && first) this.fail(502, 'upstream_bad_response', dec.error ?? 'bad chunked body');
          else this.abortBoth();
          return;
        }
        if (!v10) ok = first ? this.writeHead(buf, start, end) : send(client, buf, start, end);
        else {
          ok = !this.clientFull;
          this.clientFull = false;
        }
        if (dec.done) {
          if (end < buf.length) this.unusable = true;
          this.finish();
          return;
        }
        break;
      }
      case 'close':
        ok = first ? this.writeHead(buf, start, buf.length) : send(client, buf, start, buf.length);
        break;
    }
    if (!ok) this.conn?.socket.pause();
  }

  /** The client drained its write buffer: let the upstream flow again. */
  onClientDrain(): void {
    this.conn?.socket.resume();
  }

  onUpstreamEnd(): void {
    if (this.finished) return;
    if (this.resp !== null && this.resp.framing === 'close') {
      this.unusable = true;
      this.finish();
      return;
    }
    this.onUpstreamError(new Error('upstream closed before the response was complete'));
  }

  onUpstreamError(err: Error): void {
    if (this.finished) return;
    const conn = this.conn;
    this.conn = null;
    conn?.destroy();
    if (this.resp !== null) {
      this.abortBoth();
      return;
    }
    // A pooled connection the host closed while idle fails before any byte: try a fresh one once.
    if (conn?.used && this.respBuf === null && this.body !== null && !this.retried) {
      this.retried = true;
      this.start();
      return;
    }
    this.upstreamError = 'error';
    this.fail(502, 'upstream_unreachable', err.message);
  }

  onUpstreamTimeout(): void {
    if (this.finished) return;
    this.upstreamError = 'timeout';
    if (this.resp !== null) {
      this.abortBoth();
      return;
    }
    this.conn?.destroy();
    this.conn = null;
    this.fail(503, 'upstream_timeout', 'the metadata service did not answer in time');
  }

  onUpstreamDrain(): void {
    this.host.resumeClient();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    const conn = this.conn;
    this.conn = null;
    if (conn !== null) {
      conn.socket.resume();
      if (this.unusable || !this.requestComplete || this.resp!.close) conn.destroy();
      else this.pool.release(conn);
    }
    this.host.exchangeFinished(this, this.closeAfter);
  }

  private fail(status: number, code: string, detail: string): void {
    if (this.finished) return;
    this.finished = true;
    this.conn?.destroy();
    this.conn = null;
    this.status = status;
    this.host.exchangeFailed(this, status, code, detail);
  }

  private abortBoth(): void {
    if (this.finished) return;
    this.finished = true;
    this.conn?.destroy();
    this.conn = null;
    this.host.exchangeAborted(this);
  }
}
