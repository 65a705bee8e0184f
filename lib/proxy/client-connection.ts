import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { BodyBuffer } from './body-buffer.js';
import { ChunkedDecoder, frameChunk } from './chunked.js';
import type { ClientSocket } from './client-socket.js';
import { UNATTRIBUTED_UID } from './connection-limits.js';
import { Exchange, type ExchangeHost } from './exchange.js';
import { answerLocalPath } from './local-paths.js';
import { ownBytes } from './native-io.js';
import { parseRequestHead, type RequestHead } from './request-head.js';
import { HEAD_MEMO_MAX, type RequestMemo, type RequestMemos } from './request-memo.js';
import { CONTINUE_100, codeForStatus, errorBody, localResponse } from './responses.js';
import type {
  CallerClaims,
  ConnOriginLike,
  Decision,
  EndpointRoute,
  ProxyContext,
  ProxySnapshot,
  RequestAuditRecord,
} from './types.js';
import type { UpstreamPool } from './upstream-pool.js';
import { buildUpstreamHead, hostDate } from './upstream-request.js';

enum State {
  Head,
  Body,
  Busy,
  Closed,
}

const EMPTY = Buffer.alloc(0);
/** A buffered body (at most the 100 KiB limit) must arrive within this many head deadlines of its head. */
const BODY_DEADLINE_HEADS = 3;
/** Bytes a client may pipeline while its current request is in flight before reads pause. */
const MAX_PENDING_WHILE_BUSY = 256 * 1024;
/** How long an agent error response lingers for the client to read it before the socket is torn down. */
const LINGER_MS = 2000;
/** The same for a connection refused over its limit: short, as a flood of them must not hold descriptors. */
const REFUSED_LINGER_MS = 200;

let nextConnectionId = 1;

/** The request being handled on a connection (one at a time: pipelined requests wait in order). */
interface Current {
  id: number;
  head: RequestHead;
  snapshot: ProxySnapshot;
  decision: Decision | null;
  t0: number;
  timeMs: number;
  signed: boolean;
  // Body being read: buffered for signing, or streamed (signature-exempt uploads).
  stream: Exchange | null;
  decoder: ChunkedDecoder | null;
  need: number;
  /** Streamed: the decoded pieces of the current read, framed and sent at once. */
  parts: Buffer[];
  /** Buffered: the body so far (null for a Content-Length body that came in one read: `parts`). */
  body: BodyBuffer | null;
  got: number;
  limit: number;
  /** Chunked: bytes of framing and data read so far (bounded, see feedBody). */
  wire: number;
}

/** Normalises `::ffff:a.b.c.d` to `a.b.c.d` (the kernel publishes the IPv4 form). */
export function normalizeAddress(a: string | undefined): string {
  if (a === undefined) return '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/**
 * One client connection on the agent port, from accept to close. Attribution happens once, here,
 * at accept (the kernel record is consumed); each request then runs top to bottom: parse head →
 * authorize against the snapshot current at that moment → read or stream the body → sign →
 * forward → relay the response → audit. Requests are handled strictly one at a time, in order.
 */
export class ClientConnection implements ExchangeHost {
  readonly id = nextConnectionId++;
  clientVersion: 10 | 11 = 11;
  private pending: Buffer | null = null;
  private state = State.Head;
  private headStart = 0;
  private lastActive = performance.now();
  private requests = 0;
  private cur: Current | null = null;
  private exchange: Exchange | null = null;
  /** The request line of a head refused while parsing (the audit record names it). */
  private refusedLine: { method: string; target: string } | null = null;
  private readonly origin: ConnOriginLike | null;
  private readonly route: EndpointRoute | null = null;
  private readonly claims: CallerClaims | null = null;
  /** `address:port` the caller connected to, for its audit records. */
  private readonly origDst: string | null = null;
  /** The last head and decision of this caller to this endpoint (shared with its other connections). */
  private readonly memo: RequestMemo;

  constructor(
    readonly socket: ClientSocket,
    private readonly ctx: ProxyContext,
    private readonly pool: UpstreamPool,
    memos: RequestMemos,
  ) {
    socket.setNoDelay(true);
    this.origin = this.attribute();
    if (this.origin !== null) {
      const o = this.origin;
      this.route = ctx.routes.find((r) => r.port === o.origPort && r.address === o.origDst) ?? null;
      this.claims = ctx.claims(o);
      this.origDst = o.origDst + ':' + o.origPort;
    }
    this.memo = memos.forConnection(this.claims, this.route?.name ?? null);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.exchange?.onClientDrain());
    socket.on('timeout', () => this.onTimeout());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.onClose());
    socket.setTimeout(ctx.timeouts.headerMs);
  }

  private attribute(): ConnOriginLike | null {
    const s = this.socket;
    try {
      // The accepted socket's fd: the addon's own (native sockets), else libuv's (TCPWrap.fd: Unix
      // only, -1 elsewhere).
      const fd = s.fd ?? (s as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
      if (this.ctx.lookupSocket !== undefined && typeof fd === 'number' && fd >= 0) return this.ctx.lookupSocket(fd);
      return this.ctx.lookup(
        { address: normalizeAddress(s.remoteAddress), port: s.remotePort ?? 0 },
        { address: normalizeAddress(s.localAddress), port: s.localPort ?? 0 },
      );
    } catch {
      return null; // a lookup failure is a miss: default-closed
    }
  }

  private onData(chunk: Buffer): void {
    if (this.state === State.Closed) return;
    this.pending = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.state === State.Head) this.processHead();
    else if (this.state === State.Body) {
      // The idle timer alone would let a byte every few seconds hold a buffered body (and this
      // connection) forever: it must be complete within BODY_DEADLINE_HEADS head deadlines.
      const cur = this.cur!;
      if (cur.stream === null && performance.now() - cur.t0 > BODY_DEADLINE_HEADS * this.ctx.timeouts.headerMs)
        this.bodyFailed(408, 'header_timeout', 'request body too slow');
      else this.feedBody();
    } else if (this.pending.length > MAX_PENDING_WHILE_BUSY) this.socket.pause();
    // What is left waits for the next event: its own bytes, not a view holding a read slab.
    if (this.pending !== null) this.pending = ownBytes(this.pending);
  }

  private processHead(): void {
    const buf = this.pending!;
    const now = performance.now();
    if (this.headStart === 0) this.headStart = now;
    const memo = this.memo.head;
    if (memo !== null) {
      const n = memo.bytes.length;
      if (buf.length >= n && buf.compare(memo.bytes, 0, n, 0, n) === 0) {
        // Byte for byte the previous head (which ended with its blank line at n): the same parse.
        this.pending = n < buf.length ? buf.subarray(n) : null;
        this.clientVersion = memo.head.version;
        this.handleRequest(memo.head);
        return;
      }
    }
    const r = parseRequestHead(buf, 0, buf.length, this.ctx.headLimits);
    if (r.kind === 'incomplete') {
      if (now - this.headStart > this.ctx.timeouts.headerMs)
        this.reject(408, 'header_timeout', 'request head too slow');
      return;
    }
    if (r.kind === 'error') {
      // The method is any token up to the header limit: cut, as the audit cuts targets.
      if (r.method !== undefined) this.refusedLine = { method: r.method.slice(0, 32), target: r.target ?? '' };
      this.reject(r.status, codeForStatus(r.status), r.reason);
      return;
    }
    const head = r.head;
    if (r.headEnd <= HEAD_MEMO_MAX && head.contentLength <= 0 && !head.chunked && !head.expectContinue)
      this.memo.head = { bytes: Buffer.from(buf.subarray(0, r.headEnd)), head, upstream: null };
    this.pending = r.headEnd < buf.length ? buf.subarray(r.headEnd) : null;
    this.clientVersion = head.version;
    this.handleRequest(head);
  }

  /** The per-request path, top to bottom. */
  private handleRequest(head: RequestHead): void {
    const snapshot = this.ctx.snapshot; // captured once: this request uses this policy and key
    const cur: Current = {
      id: ++this.requests,
      head,
      snapshot,
      decision: null,
      t0: this.headStart,
      timeMs: Date.now(),
      signed: false,
      stream: null,
      decoder: null,
      need: 0,
      parts: [],
      body: null,
      got: 0,
      limit: 0,
      wire: 0,
    };
    this.cur = cur;
    this.state = State.Busy;
    if (this.origin === null || this.route === null) {
      const local = answerLocalPath(head, snapshot, () => this.directPeerUid());
      if (local !== null) {
        if (local.notifyKeyKeeper) this.ctx.notifyKeyKeeper?.();
        this.respondLocal(local.status, local.body, local.code, local.contentType);
      } else this.reject(421, 'unattributed', 'connection was not redirected by the agent; connect to the service');
      return;
    }
    const decision = this.decide(snapshot, head);
    cur.decision = decision;
    if (!decision.forward) {
      this.reject(decision.status ?? 403, decision.code, 'request denied by policy');
      return;
    }
    const limits = this.ctx.bodyLimits;
    cur.limit = decision.signatureExempt ? limits.maxExemptBody : limits.maxBody;
    if (head.contentLength > cur.limit) {
      this.reject(413, 'body_too_large', `body over ${cur.limit} bytes`);
      return;
    }
    const hasBody = head.contentLength > 0 || head.chunked;
    if (!hasBody) {
      this.forward(cur, EMPTY);
      return;
    }
    // An HTTP/1.0 client does not know interim responses (RFC 9110 §10.1.1: ignore its expectation).
    if (head.expectContinue && head.version === 11) this.socket.write(CONTINUE_100);
    if (head.chunked) cur.decoder = new ChunkedDecoder();
    else cur.need = head.contentLength;
    if (decision.signatureExempt) {
      // Uploads are not signed, so they need not be held: stream them (up to 100 MiB).
      const body = head.chunked ? ({ kind: 'chunked' } as const) : ({ kind: 'length', length: cur.need } as const);
      const up = buildUpstreamHead(head, this.claims!.uid === 0, body, snapshot, false, this.route!);
      cur.stream = this.startExchange(head, up.text, null);
    }
    this.state = State.Body;
    if (this.pending !== null) this.feedBody();
  }

  /**
   * The policy's decision for a request of this connection. A decision is a pure function of the
   * snapshot, the caller's claims (the memo's key, with the endpoint), the method and the raw
   * target, and a client usually repeats its request: the last answer is reused while those are equal.
   */
  private decide(snapshot: ProxySnapshot, head: RequestHead): Decision {
    const last = this.memo.decision;
    if (last !== null && last.snapshot === snapshot && last.method === head.method && last.target === head.target)
      return last.decision;
    const decision = snapshot.decide(
      { endpoint: this.route!.name, method: head.method, rawTarget: head.target },
      this.claims!,
    );
    this.memo.decision = { snapshot, method: head.method, target: head.target, decision };
    return decision;
  }

  /** Consumes body bytes from `pending` for the current request (buffered or streamed). */
  private feedBody(): void {
    const cur = this.cur!;
    const buf = this.pending!;
    if (cur.decoder !== null) {
      const dec = cur.decoder;
      const before = dec.total;
      let onData: (b: Buffer, s: number, e: number) => void;
      if (cur.stream !== null) onData = (b, s, e) => cur.parts.push(b.subarray(s, e));
      else {
        const body = cur.body ?? (cur.body = new BodyBuffer(cur.limit));
        // Checked per piece, so an oversized body is refused before it is copied.
        onData = (b, s, e) => {
          if (body.length + (e - s) <= cur.limit) body.push(b, s, e);
        };
      }
      const end = dec.feed(buf, 0, buf.length, onData);
      if (end === -1) {
        this.bodyFailed(400, 'bad_request', dec.error ?? 'bad chunked body');
        return;
      }
      if (dec.total > cur.limit) {
        this.bodyFailed(413, 'body_too_large', `body over ${cur.limit} bytes`);
        return;
      }
      // Framing is not free to the agent either: tiny chunks with long extensions would make it
      // parse many times the body's size. Four times the limit (plus one read) is far beyond any
      // real client's chunking.
      cur.wire += end;
      if (cur.wire > cur.limit * 4 + 65536) {
        this.bodyFailed(413, 'body_too_large', `chunked framing over ${cur.limit * 4 + 65536} bytes`);
        return;
      }
      this.pending = end < buf.length ? buf.subarray(end) : null;
      if (cur.stream !== null) {
        // Re-framed, never relayed as the client sent it: its chunk extensions and trailer fields
        // (a smuggled request for a lenient upstream, reserved x-ms-azure-host-* names) stay here.
        const out = frameChunk(cur.parts, dec.total - before, dec.done);
        cur.parts.length = 0;
        if (out !== null && !cur.stream.writeBody(out)) this.socket.pause();
      }
      if (!dec.done) return;
    } else {
      const used = Math.min(cur.need - cur.got, buf.length);
      const slice = used === buf.length ? buf : buf.subarray(0, used);
      cur.got += used;
      this.pending = used < buf.length ? buf.subarray(used) : null;
      if (cur.stream !== null) {
        if (!cur.stream.writeBody(slice)) this.socket.pause();
      } else if (used === cur.need) {
        // The whole body in one read (the usual case): used as it is, unless it is a small view
        // into a read slab (kept for the whole exchange, retries included).
        cur.parts.push(ownBytes(slice));
      } else {
        const body = cur.body ?? (cur.body = new BodyBuffer(cur.limit, cur.need));
        body.push(slice, 0, slice.length);
      }
      if (cur.got < cur.need) return;
    }
    this.state = State.Busy;
    if (cur.stream !== null) cur.stream.endBody();
    else this.forward(cur, cur.body !== null ? cur.body.bytes() : (cur.parts[0] ?? EMPTY));
  }

  /** The request body is bad or stalled: an agent error, or a dropped connection once a response started. */
  private bodyFailed(status: number, code: string, detail: string): void {
    const cur = this.cur!;
    const ex = cur.stream;
    if (ex !== null && ex.status !== 0) {
      // The response already started: nothing sensible can be said any more (an error response now
      // would land in the middle of the relayed one).
      ex.abort();
      this.exchange = null;
      this.complete(ex.status, ex, code);
      this.cur = null;
      this.state = State.Closed;
      this.socket.destroy();
      return;
    }
    cur.stream?.abort();
    this.exchange = null;
    this.reject(status, code, detail);
  }

  /** Signs (when a key is held) and forwards a request whose body is complete. */
  private forward(cur: Current, body: Buffer): void {
    const memo = this.memo.head;
    const reusable = memo !== null && memo.head === cur.head && body.length === 0;
    if (reusable) {
      const u = memo.upstream;
      if (u !== null && u.snapshot === cur.snapshot && u.date === hostDate(cur.snapshot.hostClockOffsetMs)) {
        cur.signed = u.signed;
        this.startExchange(cur.head, u.bytes, body);
        return;
      }
    }
    const up = buildUpstreamHead(
      cur.head,
      this.claims!.uid === 0,
      { kind: 'buffered', body },
      cur.snapshot,
      true,
      this.route!,
    );
    cur.signed = up.signed;
    if (!reusable) {
      this.startExchange(cur.head, up.text, body);
      return;
    }
    // Kept for the caller's next identical head within the same snapshot and host-clock second.
    const bytes = Buffer.from(up.text, 'latin1');
    memo.upstream = { snapshot: cur.snapshot, date: up.date, bytes, signed: up.signed };
    this.startExchange(cur.head, bytes, body);
  }

  private startExchange(head: RequestHead, text: string | Buffer, body: Buffer | null): Exchange {
    const ex = new Exchange(
      this,
      this.pool,
      this.route!.upstream,
      head.method,
      text,
      body,
      this.ctx.timeouts.responseMs,
      head.close,
    );
    this.exchange = ex;
    ex.start();
    return ex;
  }

  // ExchangeHost

  exchangeFinished(ex: Exchange, closeClient: boolean): void {
    this.exchange = null;
    this.complete(ex.status, ex);
    if (closeClient || this.cur === null || this.cur.head.close || this.ctx.draining) {
      this.cur = null;
      this.state = State.Closed;
      // Nothing more came from the client: close as soon as the response is flushed, without
      // waiting for its FIN (the kernel finishes the TCP close; one wake-up and one `end` less per
      // new-connection request). When the whole response is already in the kernel (the usual
      // case: it left in one write), close the fd now: close() sends what is queued and then the
      // FIN, as shutdown() would, without the shutdown round through Node's stream machinery.
      // A client that already sent more gets a half-close instead, so the unread bytes cannot
      // turn the close into a reset that destroys the response.
      if (this.pending !== null) {
        // Half-closed with a hard deadline: every byte the client still trickles in would re-arm
        // the idle timer, so the timer alone could hold the fd forever. The deadline is the one a
        // slow reader has anyway (the response may still be leaving).
        this.socket.end();
        this.linger(this.ctx.timeouts.headerMs);
      } else if (this.socket.writableLength === 0) this.socket.destroy();
      else this.socket.destroySoon();
      return;
    }
    this.cur = null;
    this.state = State.Head;
    this.headStart = 0;
    this.lastActive = performance.now();
    if (this.socket.isPaused()) this.socket.resume();
    if (this.pending !== null) this.processHead();
  }

  exchangeFailed(ex: Exchange, status: number, code: string, detail: string): void {
    this.exchange = null;
    this.reject(status, code, detail, ex);
  }

  exchangeAborted(ex: Exchange): void {
    this.exchange = null;
    this.complete(ex.status, ex);
    this.cur = null;
    this.state = State.Closed;
    this.socket.destroy();
  }

  resumeClient(): void {
    if (this.state === State.Body) this.socket.resume();
  }

  // Agent-generated answers

  /** Answers with an agent error, records it, and closes the connection (spec section 5). */
  private reject(status: number, code: string, detail: string, ex?: Exchange): void {
    if (this.state === State.Closed) return;
    this.complete(status, ex ?? null, code);
    this.cur = null;
    this.state = State.Closed;
    this.socket.end(localResponse(status, errorBody(status, code, detail)));
    this.linger();
  }

  private respondLocal(status: number, body: string, code: string, contentType: string): void {
    this.complete(status, null, code, 'local');
    this.cur = null;
    this.state = State.Closed;
    this.socket.end(localResponse(status, body, { contentType }));
    this.linger();
  }

  /** True for a direct (unattributed) connection whose peer socket is root's (`gpa --status`, doctor). */
  directPeerIsRoot(): boolean {
    return this.origin === null && this.directPeerUid() === 0;
  }

  /** The uid the connection counts under for the connection limits (UNATTRIBUTED_UID: none). */
  get callerUid(): number {
    return this.claims?.uid ?? this.origin?.uid ?? UNATTRIBUTED_UID;
  }

  /**
   * Over its caller's connection limit (see connection-limits.ts): 503 at once, nothing read. Not
   * audited (a flood of these must not flush the audit log); the metrics hook counts it.
   */
  refuseOverLimit(): void {
    this.state = State.Closed;
    this.ctx.onRequestDone?.({
      endpoint: this.route?.name ?? null,
      outcome: null,
      status: 503,
      code: 'too_many_connections',
      attributed: true,
      addedSeconds: null,
      upstreamSeconds: null,
      upstreamError: null,
      audit: null,
    });
    const detail = 'too many open connections from this caller; close some and retry';
    this.socket.end(localResponse(503, errorBody(503, 'too_many_connections', detail)));
    this.linger(REFUSED_LINGER_MS);
  }

  /** The socket is torn down `ms` from now, whatever the client still sends. */
  private linger(ms = LINGER_MS): void {
    this.pending = null;
    setTimeout(() => this.socket.destroy(), ms).unref();
  }

  private directPeerUid(): number | null {
    const s = this.socket;
    return this.ctx.directPeerUid(
      { address: normalizeAddress(s.remoteAddress), port: s.remotePort ?? 0 },
      { address: normalizeAddress(s.localAddress), port: s.localPort ?? 0 },
    );
  }

  // Bookkeeping

  /** Writes the audit record and reports the request to the metrics hook. */
  private complete(status: number, ex: Exchange | null, code?: string, localOutcome?: 'local'): void {
    const cur = this.cur;
    const now = performance.now();
    const d = cur?.decision ?? null;
    const upstreamMs = ex !== null && ex.sentAt > 0 ? (ex.headAt > 0 ? ex.headAt : now) - ex.sentAt : null;
    const elapsedMs = cur !== null ? now - cur.t0 : 0;
    const record: RequestAuditRecord = {
      timeMs: cur?.timeMs ?? Date.now(),
      connectionId: this.id,
      requestId: cur?.id ?? this.requests + 1,
      caller: this.claims,
      comm: this.origin?.comm ?? null,
      origDst: this.origDst,
      endpoint: this.route?.name ?? null,
      method: cur?.head.method ?? this.refusedLine?.method ?? '',
      target: cur?.head.target ?? this.refusedLine?.target ?? '',
      outcome: d !== null ? d.outcome : (localOutcome ?? 'error'),
      code: code ?? d?.code ?? '',
      ruleId: d?.ruleId ?? null,
      privilege: d?.privilege ?? null,
      identity: d?.identity ?? null,
      mode: d?.mode ?? null,
      policyEpoch: cur?.snapshot.epoch ?? this.ctx.snapshot.epoch,
      status,
      elapsedMs,
      upstreamMs,
      signed: cur?.signed ?? false,
    };
    const audit = this.ctx.audit(record);
    const hook = this.ctx.onRequestDone;
    if (hook !== null) {
      hook({
        endpoint: record.endpoint,
        outcome: d?.outcome ?? localOutcome ?? null,
        status,
        code: record.code || null,
        // A miss is a request the agent refused for want of a kernel record (421), not a local
        // path (/provision, doctor) asked over a direct connection.
        attributed: record.code !== 'unattributed',
        addedSeconds: (elapsedMs - (upstreamMs ?? 0)) / 1000,
        upstreamSeconds: upstreamMs !== null ? upstreamMs / 1000 : null,
        upstreamError: ex?.upstreamError ?? null,
        audit,
      });
    }
  }

  /** Shutdown: an idle keep-alive connection closes now; a busy one closes after its response. */
  closeIfIdle(): void {
    if (this.state === State.Head && this.pending === null) {
      this.state = State.Closed;
      this.socket.end();
    }
  }

  /** True once the connection is fully closed. */
  get closed(): boolean {
    return this.socket.destroyed;
  }

  private onTimeout(): void {
    switch (this.state) {
      case State.Head:
        if (this.pending !== null) this.reject(408, 'header_timeout', 'request head too slow');
        else if (
          // A connection that never sent a request gets the head's deadline, not the idle one
          // (unless the listener holds it, paused, until the first snapshot: its request waits).
          (this.requests === 0 && !this.socket.isPaused()) ||
          performance.now() - this.lastActive >= this.ctx.timeouts.keepAliveMs
        ) {
          // Closed: a client that keeps its side open cannot start another request here.
          this.state = State.Closed;
          this.socket.end();
          this.linger();
        } else this.socket.setTimeout(this.ctx.timeouts.headerMs);
        return;
      case State.Body:
        this.bodyFailed(408, 'header_timeout', 'request body stalled');
        return;
      case State.Busy:
        this.socket.setTimeout(this.ctx.timeouts.headerMs); // the exchange has its own deadlines
        return;
      case State.Closed:
        this.socket.destroy();
    }
  }

  private onClose(): void {
    const ex = this.exchange;
    if (ex !== null && this.state !== State.Closed) {
      this.exchange = null;
      ex.abort();
      this.complete(0, ex, 'client_closed');
    }
    this.state = State.Closed;
    this.pending = null;
  }
}
