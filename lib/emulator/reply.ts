import type { Buffer } from 'node:buffer';
import type { HostCore } from './host-core.js';
import type { SignatureVerdict } from './journal.js';

/** An answer a route produces; the server writes it. */
export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** One parsed request handed to a route. */
export interface RouteRequest {
  method: string;
  rawTarget: string;
  rawPath: string;
  rawQuery: string;
  /** Query parameters with lowercase keys, values decoded once (last wins). */
  query: Map<string, string>;
  headers: [string, string][];
  body: Buffer;
  host: HostCore;
  /** The verdict on this request's signature against the latched key. */
  signature: SignatureVerdict;
}

/** Shared by every JSON reply: the server copies reply headers, it never changes them. */
const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'application/json; charset=utf-8',
});

export function json(status: number, value: unknown): Reply {
  return jsonText(status, JSON.stringify(value));
}

/** A JSON reply whose text is already serialized (a fixed document, formatted once). */
export function jsonText(status: number, text: string): Reply {
  return { status, headers: JSON_HEADERS, body: text };
}

export function xml(status: number, text: string): Reply {
  return { status, headers: { 'content-type': 'text/xml; charset=utf-8' }, body: text };
}

/** The last value of a header; `name` in lowercase. */
export function header(req: RouteRequest, name: string): string | undefined {
  let value: string | undefined;
  for (const [n, v] of req.headers) if (n.length === name.length && n.toLowerCase() === name) value = v;
  return value;
}

/** Parses a raw query for routing; malformed escapes are kept raw rather than throwing. */
export function parseQuery(rawQuery: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!rawQuery) return out;
  for (const piece of rawQuery.split('&')) {
    const eq = piece.indexOf('=');
    const k = (eq === -1 ? piece : piece.slice(0, eq)).toLowerCase();
    if (!k) continue;
    const raw = eq === -1 ? '' : piece.slice(eq + 1);
    let v = raw;
    try {
      v = decodeURIComponent(raw.replace(/\+/g, ' '));
    } catch {
      // keep raw
    }
    out.set(k, v);
  }
  return out;
}

/** Lowercase path without a trailing slash, for route matching. */
export function routePath(rawPath: string): string {
  const p = rawPath.toLowerCase();
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}
