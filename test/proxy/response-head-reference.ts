// The previous (split/regex) response-head parser, kept as the reference for the differential test
// (with the framing rules of the review since: the final coding of all TE lines decides, TE+CL is an error).
import type { Buffer } from 'node:buffer';
import type { BodyFraming } from '../../lib/proxy/index.js';

/** How the body of an upstream response is delimited. */

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

/**
 * Parses an upstream response head from `buf[start, end)`. The upstream is trusted more than a
 * client, but it is still parsed so the agent knows where the body ends (connection reuse) and can
 * rebuild the head (hop-by-hop headers, the pass-through marker). Conflicting framing is an error:
 * it would desynchronise the pooled connection.
 */
export function referenceParseResponseHead(
  buf: Buffer,
  start: number,
  end: number,
  requestMethod: string,
): ResponseHeadResult {
  const headEnd = buf.indexOf('\r\n\r\n', start, 'latin1');
  if (headEnd === -1 || headEnd + 4 > end) {
    return end - start > MAX_RESPONSE_HEAD
      ? { kind: 'error', reason: 'response head too large' }
      : { kind: 'incomplete' };
  }
  const text = buf.toString('latin1', start, headEnd);
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.([01]) ([1-9][0-9]{2})(?: (.*))?$/.exec(lines[0]!);
  if (m === null) return { kind: 'error', reason: 'malformed status line' };
  const status = Number(m[2]);
  const head: ResponseHead = {
    status,
    reason: m[3] ?? '',
    headers: [],
    framing: 'close',
    contentLength: -1,
    close: m[1] === '0',
  };
  let chunked = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0 || line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9 || /[\s]/.test(line.slice(0, colon))) {
      return { kind: 'error', reason: 'malformed response header' };
    }
    if (/[\0\n\r]/.test(line)) return { kind: 'error', reason: 'control byte in response header' };
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    head.headers.push([name, value]);
    if (name === 'content-length') {
      if (!/^[0-9]{1,15}$/.test(value)) return { kind: 'error', reason: 'invalid response Content-Length' };
      const n = Number(value);
      if (head.contentLength !== -1 && head.contentLength !== n) {
        return { kind: 'error', reason: 'conflicting response Content-Length' };
      }
      head.contentLength = n;
    } else if (name === 'transfer-encoding') {
      // Several lines are one list: the final coding of the last line decides.
      const codings = value.toLowerCase().split(',');
      chunked = codings[codings.length - 1]!.trim() === 'chunked';
    } else if (name === 'connection') {
      for (const t of value.toLowerCase().split(',')) {
        const token = t.trim();
        if (token === 'close') head.close = true;
        else if (token === 'keep-alive' && m[1] === '0') head.close = false;
      }
    }
  }
  const sawTe = head.headers.some(([n]) => n === 'transfer-encoding');
  if (sawTe && head.contentLength !== -1) {
    return { kind: 'error', reason: 'both Content-Length and Transfer-Encoding in response' };
  }
  if (sawTe && !chunked) head.close = true; // not chunked last: the body runs until close (RFC 9112 §6.3)
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
