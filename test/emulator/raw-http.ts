import { Buffer } from 'node:buffer';
import { connect } from 'node:net';
import {
  authorizationHeaderValue,
  HOST_CLAIMS_HEADER,
  HOST_DATE_HEADER,
  ROOT_CLAIMS,
  rfc1123,
  signRequest,
  splitTarget,
} from '../../lib/signing/index.js';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends literal request bytes over a fresh socket and reads the whole response (Connection: close),
 * so a test knows exactly which headers reached the server — required to sign them.
 */
export function rawRequest(
  host: string,
  port: number,
  method: string,
  target: string,
  headers: [string, string][],
  body: Buffer = Buffer.alloc(0),
  timeoutMs = 5000,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => sock.destroy(new Error('timeout')), timeoutMs);
    sock.on('connect', () => {
      let head = `${method} ${target} HTTP/1.1\r\n`;
      for (const [n, v] of headers) head += `${n}: ${v}\r\n`;
      // write, not end: a half-close would let the server drop a request it is deliberately holding
      sock.write(Buffer.concat([Buffer.from(head + '\r\n', 'latin1'), body]));
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const sep = text.indexOf('\r\n\r\n');
      if (sep === -1) return reject(new Error(`no HTTP response (got ${JSON.stringify(text.slice(0, 80))})`));
      const [statusLine, ...lines] = text.slice(0, sep).split('\r\n');
      const h: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        h[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine!.split(' ')[1]), headers: h, body: text.slice(sep + 4) });
    });
  });
}

/** `headers` exactly as given, plus a signature over them, the target and `body`. */
export function signHeaders(
  key: { guid: string; bytes: Buffer },
  method: string,
  target: string,
  headers: [string, string][],
  body: Buffer = Buffer.alloc(0),
): [string, string][] {
  const { rawPath, rawQuery } = splitTarget(target);
  const hex = signRequest(key.bytes, { method, body, headers, rawPath, rawQuery });
  return [...headers, ['x-ms-azure-host-authorization', authorizationHeaderValue(key.guid, hex)]];
}

/** The agent's own headers (claims, date) after `base`, without framing headers. */
export function hostHeaders(base: [string, string][]): [string, string][] {
  return [...base, [HOST_CLAIMS_HEADER, ROOT_CLAIMS], [HOST_DATE_HEADER, rfc1123(new Date())]];
}

/** The headers an agent would send, plus a signature over exactly those bytes. */
export function signedHeaders(
  key: { guid: string; bytes: Buffer },
  method: string,
  target: string,
  base: [string, string][],
  body: Buffer = Buffer.alloc(0),
): [string, string][] {
  const headers: [string, string][] = [
    ...hostHeaders(base),
    ['Content-Length', String(body.length)],
    ['Connection', 'close'],
  ];
  return signHeaders(key, method, target, headers, body);
}

/** Acquires the host key the way the key keeper does (for tests that sign by hand). */
export async function acquireKey(
  host: string,
  port: number,
): Promise<{ guid: string; bytes: Buffer; incarnationId: number }> {
  const body = Buffer.from('{"authorizationScheme": "Azure-HMAC-SHA256"}');
  const r = await rawRequest(
    host,
    port,
    'POST',
    '/secure-channel/key',
    [
      ['Host', '168.63.129.16'],
      ['Content-Type', 'application/json'],
      ['Content-Length', String(body.length)],
      ['Connection', 'close'],
    ],
    body,
  );
  if (r.status !== 200) throw new Error(`acquire failed: ${r.status} ${r.body}`);
  const k = JSON.parse(r.body) as { guid: string; key: string; incarnationId: number };
  return { guid: k.guid, bytes: Buffer.from(k.key, 'hex'), incarnationId: k.incarnationId };
}
