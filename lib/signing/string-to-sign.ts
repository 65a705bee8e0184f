import { Buffer } from 'node:buffer';

/** What the signer needs of a request: the raw bytes as they go on the wire. */
export interface SignableRequest {
  method: string;
  body: Buffer;
  headers: Iterable<[string, string]>;
  rawPath: string;
  rawQuery: string;
}

/** The header the signature travels in; never part of the string to sign. */
export const AUTHORIZATION_HEADER = 'x-ms-azure-host-authorization';

// Header values arrive as latin1-decoded strings (Node keeps raw bytes that way); encoding them back
// as latin1 reproduces the exact bytes that were on the wire.
const WIRE = 'latin1';

function trimOws(value: string): string {
  const n = value.length;
  if (n === 0) return value;
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(n - 1);
  // Fast path: almost every value has nothing to trim, so avoid allocating.
  if (first !== 32 && first !== 9 && last !== 32 && last !== 9) return value;
  let s = 0;
  let e = n;
  while (s < e && (value.charCodeAt(s) === 32 || value.charCodeAt(s) === 9)) s++;
  while (e > s && (value.charCodeAt(e - 1) === 32 || value.charCodeAt(e - 1) === 9)) e--;
  return value.slice(s, e);
}

/** The canonical header block: `<lowercase name>:<trimmed value>\n` per name, sorted, last value wins. */
export function canonicalHeaders(headers: Iterable<[string, string]>): string {
  // A request has a handful of headers: keep the names sorted as they arrive (insertion into two
  // small arrays) instead of a Map, a spread and a sort per request. Past SMALL, the Map.
  const names: string[] = [];
  const values: string[] = [];
  let byName: Map<string, string> | null = null;
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (lower === AUTHORIZATION_HEADER) continue;
    if (byName !== null) {
      byName.set(lower, value);
      continue;
    }
    const at = names.indexOf(lower);
    if (at !== -1) {
      values[at] = value;
      continue;
    }
    if (names.length === SMALL) {
      byName = new Map();
      for (let i = 0; i < names.length; i++) byName.set(names[i]!, values[i]!);
      byName.set(lower, value);
      continue;
    }
    // Byte order of the lowercase names: header names are ASCII tokens, so UTF-16 order is byte order.
    // Insertion by shifting the larger names up one place (no splice: it allocates per call).
    let i = names.length;
    names.push(lower);
    values.push(value);
    while (i > 0 && names[i - 1]! > lower) {
      names[i] = names[i - 1]!;
      values[i] = values[i - 1]!;
      i--;
    }
    names[i] = lower;
    values[i] = value;
  }
  let out = '';
  if (byName !== null) {
    for (const name of [...byName.keys()].sort()) out += name + ':' + trimOws(byName.get(name)!) + '\n';
    return out;
  }
  for (let i = 0; i < names.length; i++) out += names[i] + ':' + trimOws(values[i]!) + '\n';
  return out;
}

/** Up to this many distinct header names are kept sorted by insertion. */
const SMALL = 24;

/**
 * Recent canonical queries by raw query. Metadata clients repeat a handful of queries
 * (`api-version=...`), and the canonical form is a pure function of the raw text, so a hit skips
 * the split, dedupe and sort. Bounded: cleared when full.
 */
const recentQueries = new Map<string, string>();
const RECENT_QUERIES_MAX = 256;
const RECENT_QUERY_MAX_LENGTH = 512;

/** The canonical query of spec section 4 (split, lowercase keys, raw values, dedupe, sort by key+value). */
export function canonicalQuery(rawQuery: string): string {
  if (rawQuery.length === 0) return '';
  if (rawQuery.length > RECENT_QUERY_MAX_LENGTH) return computeCanonicalQuery(rawQuery);
  let q = recentQueries.get(rawQuery);
  if (q === undefined) {
    q = computeCanonicalQuery(rawQuery);
    if (recentQueries.size >= RECENT_QUERIES_MAX) recentQueries.clear();
    recentQueries.set(rawQuery, q);
  }
  return q;
}

function computeCanonicalQuery(rawQuery: string): string {
  const seen = new Set<string>();
  const pairs: { key: string; value: string; sortKey: string }[] = [];
  for (const piece of rawQuery.split('&')) {
    const eq = piece.indexOf('=');
    const key = (eq === -1 ? piece : piece.slice(0, eq)).toLowerCase();
    if (key.length === 0) continue;
    const value = eq === -1 ? '' : piece.slice(eq + 1);
    const sortKey = key + value;
    // Dedupe identical pairs; `a=` and `a` render the same, so they are the same pair.
    const id = key + '\0' + value;
    if (seen.has(id)) continue;
    seen.add(id);
    pairs.push({ key, value, sortKey });
  }
  // Wire strings are latin1 (every code unit < 256), so code-unit order is byte order.
  pairs.sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
  return pairs.map((p) => (p.value.length === 0 ? p.key : p.key + '=' + p.value)).join('&');
}

/** The two string parts around the body: `method\n` and `\n<headers><path>\n<query>`. */
export function signingParts(req: SignableRequest): { head: string; tail: string } {
  return {
    head: req.method + '\n',
    tail: '\n' + canonicalHeaders(req.headers) + req.rawPath + '\n' + canonicalQuery(req.rawQuery),
  };
}

/** The exact bytes that are HMAC'd for a request (spec section 4). */
export function stringToSign(req: SignableRequest): Buffer {
  const { head, tail } = signingParts(req);
  return Buffer.concat([Buffer.from(head, WIRE), req.body, Buffer.from(tail, WIRE)]);
}

/** Splits a raw request target into its undecoded path and query (at the first `?`). */
export function splitTarget(rawTarget: string): { rawPath: string; rawQuery: string } {
  const q = rawTarget.indexOf('?');
  return q === -1
    ? { rawPath: rawTarget, rawQuery: '' }
    : { rawPath: rawTarget.slice(0, q), rawQuery: rawTarget.slice(q + 1) };
}
