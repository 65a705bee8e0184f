import { Buffer } from 'node:buffer';

/** How the body of an upstream response is delimited. */
export type BodyFraming = 'none' | 'length' | 'chunked' | 'close';

/**
 * A parsed upstream response head. It keeps byte ranges into the buffer it was parsed from rather
 * than strings: the agent forwards the header lines it keeps as they came (one copy, no rebuild).
 */
export interface ResponseHead {
  status: number;
  /** `[start, end)` of the status code, reason and CRLF: what follows `HTTP/1.x ` on the status line. */
  statusRest: [number, number];
  /** `[start, end)` pairs, flattened: header lines (with their CRLF) forwarded as they are. */
  keep: number[];
  /** Transfer-Encoding lines, forwarded only when the client gets the chunked body as it is. */
  te: number[];
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

// Header names the parser acts on, lowercase. A name's bytes are compared with `| 0x20`, which is
// exact for names made of letters and `-` (no other byte ORs to a lowercase letter or `-` inside a
// header line, where CR ends the line).
const OTHER = 0;
/** Hop-by-hop: not forwarded. */
const HOP = 1;
const CONTENT_LENGTH = 2;
const TRANSFER_ENCODING = 3;
const CONNECTION = 4;
type Name = typeof OTHER | typeof HOP | typeof CONTENT_LENGTH | typeof TRANSFER_ENCODING | typeof CONNECTION;
const NAMES: [string, Name][] = [
  ['content-length', CONTENT_LENGTH],
  ['transfer-encoding', TRANSFER_ENCODING],
  ['connection', CONNECTION],
  ['keep-alive', HOP],
  ['proxy-connection', HOP],
  ['te', HOP],
  ['trailer', HOP],
  ['upgrade', HOP],
  // The host's own marker header: the agent sets it on every response it relays.
  ['x-ms-azure-host-authorization', HOP],
];
/** By name length: the lowercase names of that length, as bytes. */
const NAMES_BY_LENGTH: [Uint8Array, Name][][] = [];
for (const [name, kind] of NAMES) {
  (NAMES_BY_LENGTH[name.length] ??= []).push([Buffer.from(name, 'latin1'), kind]);
}

function nameOf(buf: Buffer, start: number, end: number): Name {
  const candidates = NAMES_BY_LENGTH[end - start];
  if (candidates === undefined) return OTHER;
  outer: for (const [bytes, kind] of candidates) {
    for (let i = 0; i < bytes.length; i++) if ((buf[start + i]! | 0x20) !== bytes[i]) continue outer;
    return kind;
  }
  return OTHER;
}

/** Appends `[s, e)` to a flattened range list, merging it with the previous range when they touch. */
function addRange(ranges: number[], s: number, e: number): void {
  const n = ranges.length;
  if (n > 0 && ranges[n - 1] === s) ranges[n - 1] = e;
  else ranges.push(s, e);
}

/** True when `buf[s, e)` is `word` in any case (word: lowercase letters and `-`). */
function bytesAre(buf: Buffer, s: number, e: number, word: string): boolean {
  if (e - s !== word.length) return false;
  for (let i = 0; i < word.length; i++) if ((buf[s + i]! | 0x20) !== word.charCodeAt(i)) return false;
  return true;
}

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
    statusRest: [s + 9, lineEnd + 2],
    keep: [],
    te: [],
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
    const lineStart = p;
    p = eol + 2;
    const kind = nameOf(buf, lineStart, colon);
    if (kind === OTHER) {
      addRange(head.keep, lineStart, p);
      continue;
    }
    if (kind === HOP) continue;
    let vs = colon + 1;
    let ve = eol;
    while (vs < ve && WS[buf[vs]!] === 1) vs++;
    while (ve > vs && WS[buf[ve - 1]!] === 1) ve--;
    switch (kind) {
      case CONTENT_LENGTH: {
        // 1 to 15 digits, nothing else.
        if (ve - vs < 1 || ve - vs > 15) return bad('invalid response Content-Length');
        let n = 0;
        for (let i = vs; i < ve; i++) {
          const d = buf[i]! - 48;
          if (d < 0 || d > 9) return bad('invalid response Content-Length');
          n = n * 10 + d;
        }
        if (head.contentLength !== -1 && head.contentLength !== n) return bad('conflicting response Content-Length');
        head.contentLength = n;
        addRange(head.keep, lineStart, p);
        break;
      }
      case TRANSFER_ENCODING: {
        // Several lines are one list, in order: only the final coding of the last line decides.
        sawTe = true;
        let cs = ve;
        while (cs > vs && buf[cs - 1] !== 44) cs--;
        while (cs < ve && WS[buf[cs]!] === 1) cs++;
        chunked = bytesAre(buf, cs, ve, 'chunked');
        head.te.push(lineStart, p);
        break;
      }
      case CONNECTION:
        // Hop-by-hop: read, not forwarded. The usual single token is compared as bytes.
        if (bytesAre(buf, vs, ve, 'keep-alive')) {
          if (http10) head.close = false;
        } else if (bytesAre(buf, vs, ve, 'close')) head.close = true;
        else {
          for (const t of buf.toString('latin1', vs, ve).toLowerCase().split(',')) {
            const token = t.trim();
            if (token === 'close') head.close = true;
            else if (token === 'keep-alive' && http10) head.close = false;
          }
        }
        break;
    }
  }
  // RFC 9112 §6.3: TE overrides CL, but the pair is what response splitting looks like, and the
  // client would get both lines: a bad response, never relayed.
  if (sawTe && head.contentLength !== -1) return bad('both Content-Length and Transfer-Encoding in response');
  // Transfer codings that do not end in chunked: the body runs until close (RFC 9112 §6.3).
  if (sawTe && !chunked) head.close = true;
  if (requestMethod === 'HEAD' || status < 200 || status === 204 || status === 304) head.framing = 'none';
  else if (chunked) head.framing = 'chunked';
  else if (sawTe) head.framing = 'close';
  else if (head.contentLength !== -1) head.framing = 'length';
  else {
    head.framing = 'close';
    head.close = true;
  }
  return { kind: 'ok', head, headEnd: headEnd + 4 };
}
