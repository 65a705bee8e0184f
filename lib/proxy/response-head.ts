import { Buffer } from 'node:buffer';

/** How the body of an upstream response is delimited. */
export type BodyFraming = 'none' | 'length' | 'chunked' | 'close';

/** A parsed upstream response head; header names lowercased, values latin1 (wire bytes). */
export interface ResponseHead {
  status: number;
  reason: string;
  headers: [string, string][];
  framing: BodyFraming;
  contentLength: number;
  /** The upstream will close its side after this response (no reuse). */
  close: boolean;
}

export type ResponseHeadResult =
  | { kind: 'incomplete' }
  | { kind: 'error'; reason: string }
  | { kind: 'ok'; head: ResponseHead; headEnd: number };

const MAX_RESPONSE_HEAD = 64 * 1024;
const INCOMPLETE: ResponseHeadResult = { kind: 'incomplete' };
const HTTP1 = Buffer.from('HTTP/1.', 'latin1');

// Bytes JavaScript's `\s` matches in a latin1 string: HT, LF, VT, FF, CR, SP, NBSP.
const WS = new Uint8Array(256);
for (const c of [9, 10, 11, 12, 13, 32, 0xa0]) WS[c] = 1;

function bad(reason: string): ResponseHeadResult {
  return { kind: 'error', reason };
}

/**
 * Parses an upstream response head from `buf[start, end)`. The upstream is trusted more than a
 * client, but it is still parsed so the agent knows where the body ends (connection reuse) and can
 * rebuild the head (hop-by-hop headers, the pass-through marker). Conflicting framing is an error:
 * it would desynchronise the pooled connection. A byte scanner (no split, no regular expressions
 * per line): this runs once per forwarded request.
 */
export function parseResponseHead(buf: Buffer, start: number, end: number, requestMethod: string): ResponseHeadResult {
  const headEnd = buf.indexOf('\r\n\r\n', start, 'latin1');
  if (headEnd === -1 || headEnd + 4 > end) {
    return end - start > MAX_RESPONSE_HEAD ? bad('response head too large') : INCOMPLETE;
  }
  // Status line: HTTP/1.[01] SP [1-9][0-9][0-9] [SP reason]
  const lineEnd = buf.indexOf('\r\n', start, 'latin1');
  const s = start;
  if (
    lineEnd - s < 12 ||
    buf.compare(HTTP1, 0, 7, s, s + 7) !== 0 ||
    (buf[s + 7] !== 48 && buf[s + 7] !== 49) ||
    buf[s + 8] !== 32 ||
    !(buf[s + 9]! >= 49 && buf[s + 9]! <= 57) ||
    !(buf[s + 10]! >= 48 && buf[s + 10]! <= 57) ||
    !(buf[s + 11]! >= 48 && buf[s + 11]! <= 57) ||
    (lineEnd > s + 12 && buf[s + 12] !== 32)
  ) {
    return bad('malformed status line');
  }
  for (let i = s + 13; i < lineEnd; i++) if (buf[i] === 10 || buf[i] === 13) return bad('malformed status line');
  const http10 = buf[s + 7] === 48;
  const status = (buf[s + 9]! - 48) * 100 + (buf[s + 10]! - 48) * 10 + (buf[s + 11]! - 48);
  const head: ResponseHead = {
    status,
    reason: lineEnd > s + 12 ? buf.toString('latin1', s + 13, lineEnd) : '',
    headers: [],
    framing: 'close',
    contentLength: -1,
    close: http10,
  };
  let chunked = false;
  let sawTe = false;
  let p = lineEnd + 2;
  while (p < headEnd + 2) {
    // One header line [p, eol): no NUL, no bare CR or LF; the name has no whitespace.
    let colon = -1;
    let eol = p;
    for (;;) {
      const c = buf[eol]!;
      if (c === 13) {
        if (buf[eol + 1] !== 10) return bad('control byte in response header');
        break;
      }
      if (c === 10 || c === 0) return bad('control byte in response header');
      if (colon === -1) {
        if (c === 58) colon = eol;
        else if (WS[c] === 1) return bad('malformed response header');
      }
      eol++;
    }
    if (colon <= p) return bad('malformed response header');
    const name = buf.toString('latin1', p, colon).toLowerCase();
    let vs = colon + 1;
    let ve = eol;
    while (vs < ve && WS[buf[vs]!] === 1) vs++;
    while (ve > vs && WS[buf[ve - 1]!] === 1) ve--;
    const value = buf.toString('latin1', vs, ve);
    p = eol + 2;
    head.headers.push([name, value]);
    switch (name) {
      case 'content-length': {
        if (!/^[0-9]{1,15}$/.test(value)) return bad('invalid response Content-Length');
        const n = Number(value);
        if (head.contentLength !== -1 && head.contentLength !== n) return bad('conflicting response Content-Length');
        head.contentLength = n;
        break;
      }
      case 'transfer-encoding': {
        sawTe = true;
        const codings = value.toLowerCase().split(',');
        if (codings[codings.length - 1]!.trim() === 'chunked') chunked = true;
        else head.close = true; // not chunked last: the body runs until close (RFC 9112 §6.3)
        break;
      }
      case 'connection':
        for (const t of value.toLowerCase().split(',')) {
          const token = t.trim();
          if (token === 'close') head.close = true;
          else if (token === 'keep-alive' && http10) head.close = false;
        }
        break;
    }
  }
  if (requestMethod === 'HEAD' || status < 200 || status === 204 || status === 304) head.framing = 'none';
  else if (chunked) head.framing = 'chunked';
  else if (head.close && sawTe) head.framing = 'close';
  else if (head.contentLength !== -1) head.framing = 'length';
  else {
    head.framing = 'close';
    head.close = true;
  }
  if (chunked && head.contentLength !== -1) {
    // RFC 9112 §6.3: TE overrides CL, but the message is suspect and the connection must not be reused.
    head.close = true;
  }
  return { kind: 'ok', head, headEnd: headEnd + 4 };
}
