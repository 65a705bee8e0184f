import type { Server } from 'node:http';
import { isIP } from 'node:net';
import { GpaError } from '../errors.js';
import { createServer } from '../node-http.js';
import { PROMETHEUS_CONTENT_TYPE } from './aggregate.js';

/** True for 127.0.0.0/8, ::1 and ::ffff:127.x (the only addresses metrics may listen on). */
export function isLoopbackAddress(host: string): boolean {
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) {
    const h = host.toLowerCase();
    return h === '::1' || h === '0:0:0:0:0:0:0:1' || h.startsWith('::ffff:127.');
  }
  return false;
}

export interface MetricsServerOptions {
  /** Loopback address to bind (default 127.0.0.1); anything else is refused. */
  host?: string;
  /** Port (0 = ephemeral, for tests). */
  port: number;
  /** Produces the exposition text at scrape time (merging the worker threads). */
  gather: () => Promise<string>;
}

export interface MetricsServer {
  host: string;
  port: number;
  url: string;
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` on a loopback address. A scrape that fails answers 500 with the reason and
 * never brings the agent down.
 */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const host = opts.host ?? '127.0.0.1';
  if (!isLoopbackAddress(host)) {
    throw new GpaError(
      'GPA_ERR_CONFIG',
      `metrics listen address '${host}' is not a loopback address: metrics may reveal usage patterns; ` +
        `set "metrics": { "address": "127.0.0.1" } (or another 127.x address) and scrape through a local collector`,
    );
  }
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res
        .writeHead(404, { 'content-type': 'text/plain', connection: 'close' })
        .end('only GET /metrics is served here\n');
      return;
    }
    opts.gather().then(
      (text) => res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE }).end(text),
      (err: unknown) =>
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics collection failed: ${String(err)}\n`),
    );
  });
  server.headersTimeout = 5000;
  server.requestTimeout = 10000;
  server.maxHeadersCount = 50;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: opts.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return {
    host,
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
