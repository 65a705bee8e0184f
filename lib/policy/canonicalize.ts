import type { CanonicalizationCode } from './codes.js';
import { asciiLower, Part, percentDecode } from './percent-decode.js';

export const MAX_TARGET_LENGTH = 8192;

/** A request target in canonical form: the one shape rules and requests are compared in. */
export interface CanonicalTarget {
  ok: true;
  /** '/' + segments joined by '/'; '/' for the root. */
  path: string;
  segments: readonly string[];
  /** Lowercased keys to their decoded values in arrival order (duplicates kept). */
  query: ReadonlyMap<string, readonly string[]>;
}

export interface CanonicalFailure {
  ok: false;
  code: CanonicalizationCode;
}

export type CanonicalResult = CanonicalTarget | CanonicalFailure;

const EMPTY_QUERY: ReadonlyMap<string, readonly string[]> = new Map();

const fail = (code: CanonicalizationCode): CanonicalFailure => ({ ok: false, code });

/**
 * Canonicalizes an origin-form request target. Decodes once; refuses anything whose meaning could
 * differ between us and the host (see docs/policy.md, "Canonicalization"). Pure and allocation-light:
 * ASCII segments without escapes are sliced, not rebuilt.
 */
export function canonicalize(rawTarget: string): CanonicalResult {
  const n = rawTarget.length;
  if (n > MAX_TARGET_LENGTH) return fail('target_too_long');
  if (n === 0 || rawTarget.charCodeAt(0) !== 0x2f) return fail('target_not_origin_form');
  let qmark = -1;
  for (let i = 0; i < n; i++) {
    const c = rawTarget.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f)
      return fail(c === 0 ? 'nul_byte' : c <= 0x20 || c === 0x7f ? 'control_char' : 'non_ascii');
    if (c === 0x5c) return fail('backslash');
    if (c === 0x23) return fail('fragment');
    if (qmark === -1) {
      if (c === 0x3f) qmark = i;
      // A path parameter is not part of the resource name for some servers and is for others:
      // `/a/..;/b` is /b to one and under /a to another. No metadata path has one: refuse it.
      else if (c === 0x3b) return fail('path_parameter');
    }
  }
  const pathEnd = qmark === -1 ? n : qmark;
  const segments: string[] = [];
  let start = 1;
  while (start <= pathEnd) {
    let end = rawTarget.indexOf('/', start);
    if (end === -1 || end > pathEnd) end = pathEnd;
    if (end > start) {
      const d = percentDecode(rawTarget, start, end, Part.PathSegment);
      if (typeof d !== 'string') return fail(d.fail);
      const r = pushSegment(segments, d);
      if (r) return fail(r);
    }
    start = end + 1;
  }
  const path = segments.length === 0 ? '/' : `/${segments.join('/')}`;
  if (qmark === -1 || qmark === n - 1) return { ok: true, path, segments, query: EMPTY_QUERY };
  const query = parseQuery(rawTarget, qmark + 1, n);
  if (!(query instanceof Map)) return query;
  return { ok: true, path, segments, query };
}

function pushSegment(segments: string[], decoded: string): CanonicalizationCode | null {
  if (decoded === '' || decoded === '.') return null;
  if (decoded === '..') {
    if (segments.length === 0) return 'path_above_root';
    segments.pop();
    return null;
  }
  // Windows hosts trim trailing dots and spaces, so `instance.` could alias `instance`.
  const last = decoded.charCodeAt(decoded.length - 1);
  if (last === 0x2e || last === 0x20) return 'ambiguous_segment';
  segments.push(asciiLower(decoded));
  return null;
}

function parseQuery(s: string, start: number, end: number): Map<string, string[]> | CanonicalFailure {
  const query = new Map<string, string[]>();
  while (start <= end) {
    let amp = s.indexOf('&', start);
    if (amp === -1 || amp > end) amp = end;
    if (amp > start) {
      let eq = s.indexOf('=', start);
      if (eq === -1 || eq > amp) eq = amp;
      const key = percentDecode(s, start, eq, Part.QueryKey);
      if (typeof key !== 'string') return fail(key.fail);
      const value = eq < amp ? percentDecode(s, eq + 1, amp, Part.QueryValue) : '';
      if (typeof value !== 'string') return fail(value.fail);
      if (key !== '') {
        const k = asciiLower(key);
        const list = query.get(k);
        if (list) list.push(value);
        else query.set(k, [value]);
      }
    }
    start = amp + 1;
  }
  return query;
}

/** Renders a canonical target as text (for logs, --explain and the idempotence property). */
export function renderCanonical(t: CanonicalTarget): string {
  const path = t.segments.length === 0 ? '/' : `/${t.segments.map(encodeQueryPart).join('/')}`;
  if (t.query.size === 0) return path;
  const parts: string[] = [];
  for (const [k, vs] of t.query) for (const v of vs) parts.push(`${encodeQueryPart(k)}=${encodeQueryPart(v)}`);
  return `${path}?${parts.join('&')}`;
}

/** Percent-encodes everything but unreserved characters, so rendering then canonicalizing is stable. */
export function encodeQueryPart(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
