import type { Buffer } from 'node:buffer';
import {
  AUTHORIZATION_HEADER,
  authorizationHeaderValue,
  HOST_CLAIMS_HEADER,
  HOST_DATE_HEADER,
  NON_ROOT_CLAIMS,
  ROOT_CLAIMS,
  rfc1123,
  signRequest,
  splitTarget,
} from '../signing/index.js';
import type { RequestHead } from './request-head.js';
import type { EndpointRoute, ProxySnapshot } from './types.js';

// Request headers that describe the client hop; the agent frames the upstream hop itself.
const REQUEST_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'content-length',
]);

let cachedSecond = -1;
let cachedDate = '';

/** Host-synced RFC 1123 date, formatted at most once per second. */
export function hostDate(offsetMs: number): string {
  const now = Date.now() + offsetMs;
  const sec = Math.floor(now / 1000);
  if (sec !== cachedSecond) {
    cachedSecond = sec;
    cachedDate = rfc1123(new Date(sec * 1000));
  }
  return cachedDate;
}

/** How the forwarded body is framed. */
export type UpstreamBody =
  | { kind: 'buffered'; body: Buffer }
  | { kind: 'length'; length: number }
  | { kind: 'chunked' };

/** `Host` for the endpoint as its clients address it: the metadata address, and the port unless 80. */
function hostOf(route: EndpointRoute): string {
  const a = route.address.includes(':') ? '[' + route.address + ']' : route.address;
  return route.port === 80 ? a : a + ':' + route.port;
}

/**
 * The head sent upstream: the client's end-to-end headers minus every `x-ms-azure-host-*` header
 * (always, key or no key), plus the claims and date headers, framing, `Host` when an HTTP/1.0
 * client sent none (the upstream hop is HTTP/1.1, which requires it), and — when a key is held and
 * the target is not signature-exempt — the HMAC over exactly the headers that go on the wire (the
 * added `Host` included, as the host verifies every header it receives).
 */
export function buildUpstreamHead(
  head: RequestHead,
  isRoot: boolean,
  body: UpstreamBody,
  snapshot: ProxySnapshot,
  sign: boolean,
  route: EndpointRoute,
): { text: string; signed: boolean; date: string } {
  const out: [string, string][] = [];
  // HTTP/1.1 requests without Host were refused by the parser; only HTTP/1.0 ones can lack it.
  if (head.version === 10 && !head.headers.some((h) => h[0] === 'host')) out.push(['host', hostOf(route)]);
  const hop = head.connectionTokens;
  for (const h of head.headers) {
    const name = h[0];
    if (REQUEST_HOP.has(name)) continue;
    if (name.length >= 16 && name.startsWith('x-ms-azure-host-')) continue;
    if (hop?.includes(name)) continue;
    out.push(h);
  }
  if (body.kind === 'buffered') {
    // Keep an explicit zero length the client sent (POST with empty body); add one when decoded.
    if (body.body.length > 0 || head.contentLength !== -1 || head.chunked) {
      out.push(['content-length', String(body.body.length)]);
    }
  } else if (body.kind === 'length') out.push(['content-length', String(body.length)]);
  else out.push(['transfer-encoding', 'chunked']);
  out.push([HOST_CLAIMS_HEADER, isRoot ? ROOT_CLAIMS : NON_ROOT_CLAIMS]);
  const date = hostDate(snapshot.hostClockOffsetMs);
  out.push([HOST_DATE_HEADER, date]);

  let text = head.method + ' ' + head.target + ' HTTP/1.1\r\n';
  for (const [name, value] of out) text += name + ': ' + value + '\r\n';
  let signed = false;
  const key = snapshot.key;
  if (sign && key !== null && body.kind === 'buffered') {
    const { rawPath, rawQuery } = splitTarget(head.target);
    const hex = signRequest(key.signingKey, { method: head.method, body: body.body, headers: out, rawPath, rawQuery });
    text += AUTHORIZATION_HEADER + ': ' + authorizationHeaderValue(key.guid, hex) + '\r\n';
    signed = true;
  }
  return { text: text + '\r\n', signed, date };
}
