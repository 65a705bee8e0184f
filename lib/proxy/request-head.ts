import type { Buffer } from 'node:buffer';

/**
 * A strict HTTP/1.x request-head parser for the hot path. It works on the raw bytes of a client
 * socket, never allocates for a head that is not yet complete, and rejects every framing ambiguity
 * a request-smuggling attack needs (CL+TE, duplicate CL, obs-fold, bare LF, odd TE values).
 * Hand-written instead of `http.createServer` because the benchmark goal (added latency ≤1.5×
 * nginx's) leaves no room for the generic server's per-request object churn.
 */

/** Limits applied while parsing; all sizes in bytes. */
export interface HeadLimits {
  maxHeaderBytes: number;
  maxUriBytes: number;
  maxHeaders: number;
}

export const DEFAULT_HEAD_LIMITS: HeadLimits = { maxHeaderBytes: 32 * 1024, maxUriBytes: 8 * 1024, maxHeaders: 100 };

export const ALLOWED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'] as const;
export const ALLOW_HEADER_VALUE = ALLOWED_METHODS.join(', ');
const ALLOWED = new Set<string>(ALLOWED_METHODS);

/** A parsed request head. Header strings are latin1 so they round-trip the exact wire bytes. */
export interface RequestHead {
  method: string;
  target: string;
  /** 10 or 11. */
  version: 10 | 11;
  headers: [string, string][];
  /** -1 when absent. */
  contentLength: number;
  chunked: boolean;
  /** The client wants the connection closed after this exchange. */
  close: boolean;
  expectContinue: boolean;
  /** Lowercase header names listed in `Connection` (besides close/keep-alive): hop-by-hop. */
  connectionTokens: string[] | null;
}

export type HeadResult =
  | { kind: 'incomplete' }
  /** `method` and `target` once the request line was read that far (for the audit record). */
  | { kind: 'error'; status: number; reason: string; method?: string; target?: string }
  | { kind: 'ok'; head: RequestHead; headEnd: number };

const INCOMPLETE: HeadResult = { kind: 'incomplete' };
/** Empty lines (CRLF) tolerated before a request line. */
const MAX_LEADING_EMPTY_LINES = 4;

// RFC 9110 tchar lookup: ALPHA / DIGIT / "!#$%&'*+-.^_`|~".
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[c.charCodeAt(0)] = 1;
}

function err(status: number, reason: string): HeadResult {
  return { kind: 'error', status, reason };
}

/**
 * Parses one request head from `buf[start, end)`. Returns `incomplete` until the blank line
 * arrives (or an error once a limit is crossed), otherwise the head and the offset just past it.
 */
export function parseRequestHead(buf: Buffer, start: number, end: number, limits: HeadLimits): HeadResult {
  // Tolerate the few CRLFs some clients send between pipelined requests (RFC 9112 §2.2), not a
  // stream of them; the size limits count them too.
  const first = start;
  while (start + 1 < end && buf[start] === 13 && buf[start + 1] === 10) {
    if (start - first >= 2 * MAX_LEADING_EMPTY_LINES) return err(400, 'empty lines before the request line');
    start += 2;
  }
  const lineEnd = buf.indexOf(10, start);
  if (lineEnd === -1 || lineEnd >= end) {
    if (end - first > limits.maxUriBytes + 32) return err(414, 'request line too long');
    return INCOMPLETE;
  }
  const headEnd = buf.indexOf('\r\n\r\n', start, 'latin1');
  if (headEnd === -1 || headEnd + 4 > end) {
    if (end - first > limits.maxHeaderBytes) return err(431, 'header block too large');
    if (buf[lineEnd - 1] !== 13) return err(400, 'bare LF in request line');
    return INCOMPLETE;
  }
  if (headEnd + 4 - first > limits.maxHeaderBytes) return err(431, 'header block too large');
  if (buf[lineEnd - 1] !== 13) return err(400, 'bare LF in request line');

  // Request line: METHOD SP target SP HTTP/1.x
  let p = start;
  const lineStop = lineEnd - 1;
  while (p < lineStop && TCHAR[buf[p]!] === 1) p++;
  if (p === start || buf[p] !== 32) return err(400, 'malformed method');
  const method = buf.toString('latin1', start, p);
  const tStart = ++p;
  while (p < lineStop) {
    const c = buf[p]!;
    if (c === 32) break;
    if (c < 0x21 || c > 0x7e) return err(400, 'invalid byte in request target');
    p++;
  }
  const tLen = p - tStart;
  if (tLen > limits.maxUriBytes) return err(414, 'request target too long');
  if (tLen === 0 || buf[p] !== 32) return err(400, 'malformed request line');
  if (lineStop - (p + 1) !== 8 || buf.toString('latin1', p + 1, p + 7) !== 'HTTP/1' || buf[p + 7] !== 46) {
    return err(400, 'unsupported HTTP version');
  }
  const minor = buf[p + 8];
  if (minor !== 48 && minor !== 49) return err(400, 'unsupported HTTP version');
  const target = buf.toString('latin1', tStart, tStart + tLen);
  if (!ALLOWED.has(method))
    return { kind: 'error', status: 405, reason: `method ${method.slice(0, 16)} not allowed`, method, target };
  // Origin form only: an absolute or authority form would make the agent an open proxy.
  if (target.charCodeAt(0) !== 47)
    return { kind: 'error', status: 400, reason: 'only origin-form request targets are accepted', method, target };

  const head: RequestHead = {
    method,
    target,
    version: minor === 49 ? 11 : 10,
    headers: [],
    contentLength: -1,
    chunked: false,
    close: minor !== 49,
    expectContinue: false,
    connectionTokens: null,
  };
  const bad = parseHeaderLines(buf, lineEnd + 1, headEnd + 2, head, limits);
  if (bad !== null) return bad.kind === 'error' ? { ...bad, method, target } : bad;
  return { kind: 'ok', head, headEnd: headEnd + 4 };
}

function parseHeaderLines(
  buf: Buffer,
  p: number,
  stop: number,
  head: RequestHead,
  limits: HeadLimits,
): HeadResult | null {
  let sawHost = false;
  let sawTe = false;
  while (p < stop) {
    const first = buf[p]!;
    if (first === 32 || first === 9) return err(400, 'obsolete line folding');
    const nStart = p;
    while (TCHAR[buf[p]!] === 1) p++;
    if (p === nStart || buf[p] !== 58) return err(400, 'malformed header name');
    const name = buf.toString('latin1', nStart, p).toLowerCase();
    p++;
    while (buf[p] === 32 || buf[p] === 9) p++;
    const vStart = p;
    let vEnd = p;
    for (;;) {
      const c = buf[p]!;
      if (c === 13) break;
      // Visible ASCII, SP and HTAB only: no obs-text, no controls (a bare LF lands here too).
      if ((c < 0x20 && c !== 9) || c > 0x7e) return err(400, `invalid byte in header ${name.slice(0, 40)}`);
      p++;
      if (c !== 32 && c !== 9) vEnd = p;
    }
    if (buf[p + 1] !== 10) return err(400, 'bare CR in header');
    const value = buf.toString('latin1', vStart, vEnd);
    p += 2;
    if (head.headers.length >= limits.maxHeaders) return err(431, 'too many headers');
    head.headers.push([name, value]);
    switch (name) {
      case 'content-length':
        if (head.contentLength !== -1) return err(400, 'duplicate Content-Length');
        if (!/^[0-9]{1,15}$/.test(value)) return err(400, 'invalid Content-Length');
        head.contentLength = Number(value);
        break;
      case 'transfer-encoding':
        if (sawTe || head.version === 10) return err(400, 'unsupported Transfer-Encoding');
        if (value.toLowerCase() !== 'chunked') return err(400, 'unsupported Transfer-Encoding');
        sawTe = true;
        head.chunked = true;
        break;
      case 'host':
        if (sawHost) return err(400, 'duplicate Host');
        sawHost = true;
        break;
      case 'connection':
        applyConnectionHeader(head, value);
        break;
      case 'expect':
        if (value.toLowerCase() !== '100-continue') return err(417, 'unsupported Expect');
        head.expectContinue = true;
        break;
    }
  }
  if (head.chunked && head.contentLength !== -1) return err(400, 'both Content-Length and Transfer-Encoding');
  if (head.version === 11 && !sawHost) return err(400, 'missing Host header');
  return null;
}

function applyConnectionHeader(head: RequestHead, value: string): void {
  for (const raw of value.split(',')) {
    const token = raw.trim().toLowerCase();
    if (token === '') continue;
    if (token === 'close') head.close = true;
    else if (token === 'keep-alive') {
      if (head.version === 10) head.close = false;
    } else (head.connectionTokens ??= []).push(token);
  }
}
