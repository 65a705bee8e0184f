import { request } from 'node:http';

/**
 * Calls the emulator's control API from another process (e.g. a test driving `gpa emulator` inside
 * a network namespace). `controlUrl` is `http://host:port` or `unix:<socket path>`.
 */
export function controlRequest(controlUrl: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const target = controlUrl.startsWith('unix:')
    ? { socketPath: controlUrl.slice(5) }
    : { host: new URL(controlUrl).hostname.replace(/^\[|\]$/g, ''), port: Number(new URL(controlUrl).port) };
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...target,
        method,
        path,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // keep text
          }
          if ((res.statusCode ?? 500) >= 400) {
            reject(new Error(`emulator control ${method} ${path}: ${res.statusCode} ${text}`));
          } else resolve(parsed);
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`emulator control ${method} ${path}: timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}
