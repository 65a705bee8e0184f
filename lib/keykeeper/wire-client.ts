import { Buffer } from 'node:buffer';
import { request } from '../node-http.js';
import {
  AUTHORIZATION_HEADER,
  authorizationHeaderValue,
  HOST_CLAIMS_HEADER,
  HOST_DATE_HEADER,
  ROOT_CLAIMS,
  rfc1123,
  signRequest,
} from '../signing/index.js';

export interface WireResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface WireTarget {
  host: string;
  port: number;
  /** The Host header the real WireServer expects. */
  hostHeader: string;
  timeoutMs: number;
  maxResponseBytes: number;
}

/**
 * One call to WireServer with the spec section 2 headers. Plain HTTP to the configured address: the
 * agent's own connections are exempt from redirection. Every header sent is listed here explicitly
 * (Host, Content-Length, Connection included) so a signature covers exactly what goes on the wire.
 */
export function wireCall(
  t: WireTarget,
  method: 'GET' | 'POST',
  path: string,
  hostDate: Date,
  opts: { body?: string; contentType?: string; signWith?: { guid: string; bytes: Buffer } } = {},
): Promise<WireResponse> {
  const body = Buffer.from(opts.body ?? '', 'utf8');
  const headers: [string, string][] = [
    ['Host', t.hostHeader],
    [HOST_DATE_HEADER, rfc1123(hostDate)],
    [HOST_CLAIMS_HEADER, ROOT_CLAIMS],
    ['Metadata', 'True'],
    ['Connection', 'close'],
  ];
  if (opts.contentType) headers.push(['Content-Type', opts.contentType]);
  if (method === 'POST') headers.push(['Content-Length', String(body.length)]);
  if (opts.signWith) {
    const hex = signRequest(opts.signWith.bytes, { method, body, headers, rawPath: path, rawQuery: '' });
    headers.push([AUTHORIZATION_HEADER, authorizationHeaderValue(opts.signWith.guid, hex)]);
  }
  return new Promise((resolve, reject) => {
    const req = request({
      host: t.host,
      port: t.port,
      method,
      path,
      headers: Object.fromEntries(headers),
      agent: false,
      setHost: false,
    });
    const timer = setTimeout(
      () => req.destroy(new Error(`${method} ${path} timed out after ${t.timeoutMs} ms`)),
      t.timeoutMs,
    );
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > t.maxResponseBytes) {
          req.destroy(new Error(`${method} ${path}: response over ${t.maxResponseBytes} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      // A destroyed or cut-off response must still settle (resolve/reject are no-ops once settled).
      res.on('close', () => {
        clearTimeout(timer);
        if (!res.complete) reject(new Error(`${method} ${path}: connection closed before the response ended`));
      });
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`WireServer ${t.host}:${t.port} ${method} ${path}: ${err.message}`));
    });
    req.end(body.length > 0 ? body : undefined);
  });
}
