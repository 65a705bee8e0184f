import type { CanonicalizationCode } from './codes.js';

/** Where a component sits decides which decoded characters are structural and must be refused. */
export const Part = { PathSegment: 0, QueryKey: 1, QueryValue: 2 } as const;
export type Part = (typeof Part)[keyof typeof Part];

export type Decoded = string | { fail: CanonicalizationCode };

const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[65 + i] = 10 + i;
  HEX[97 + i] = 10 + i;
}

function hexAt(s: string, i: number): number {
  const c = s.charCodeAt(i);
  return c < 128 ? HEX[c]! : -1;
}

/** Code for a decoded ASCII byte in this part, or null when it is acceptable. */
function refuseDecoded(b: number, part: Part): CanonicalizationCode | null {
  if (b === 0) return 'nul_byte';
  if (b < 0x20 || b === 0x7f) return 'control_char';
  if (part === Part.QueryValue) return null;
  if (b === 0x25) return 'double_encoding';
  if (part === Part.QueryKey) return null;
  if (b === 0x2f) return 'encoded_slash';
  if (b === 0x3f) return 'encoded_question';
  if (b === 0x5c) return 'backslash';
  if (b === 0x23 || b === 0x3b) return 'encoded_delimiter';
  return null;
}

/**
 * Decodes `%XX` exactly once in s[start, end). The raw text was already checked to be visible ASCII,
 * so only escapes can produce refused bytes. Non-ASCII results must be strict UTF-8.
 */
export function percentDecode(s: string, start: number, end: number, part: Part): Decoded {
  const pct = s.indexOf('%', start);
  if (pct === -1 || pct >= end) return s.slice(start, end);
  const bytes: number[] = [];
  let ascii = true;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c !== 0x25) {
      bytes.push(c);
      continue;
    }
    const hi = i + 2 < end ? hexAt(s, i + 1) : -1;
    const lo = hi >= 0 ? hexAt(s, i + 2) : -1;
    if (lo < 0) return { fail: 'malformed_escape' };
    const b = (hi << 4) | lo;
    if (b < 0x80) {
      const refused = refuseDecoded(b, part);
      if (refused) return { fail: refused };
    } else if (part !== Part.QueryValue) {
      // Names are ASCII. A non-ASCII letter (dotless ı, the Kelvin sign) is a look-alike that an
      // upstream folding case (.NET's OrdinalIgnoreCase, JavaScript's toLowerCase) reads as i or k.
      return { fail: 'encoded_non_ascii' };
    } else ascii = false;
    bytes.push(b);
    i += 2;
  }
  if (ascii) return String.fromCharCode(...bytes);
  const bad = checkUtf8(bytes);
  if (bad) return { fail: bad };
  return Buffer.from(bytes).toString('utf8');
}

/** Strict UTF-8: no overlongs, surrogates, code points above U+10FFFF, or C1 controls. */
export function checkUtf8(b: readonly number[]): CanonicalizationCode | null {
  const n = b.length;
  for (let i = 0; i < n; ) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min = 0x80;
    let max = 0xbf;
    if (c === 0xc0 || c === 0xc1) return 'overlong_utf8';
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c === 0xe0) {
      need = 2;
      min = 0xa0;
    } else if (c === 0xed) {
      need = 2;
      max = 0x9f;
    } else if (c >= 0xe1 && c <= 0xef) need = 2;
    else if (c === 0xf0) {
      need = 3;
      min = 0x90;
    } else if (c >= 0xf1 && c <= 0xf3) need = 3;
    else if (c === 0xf4) {
      need = 3;
      max = 0x8f;
    } else return 'invalid_utf8';
    if (i + need >= n) return 'invalid_utf8';
    const first = b[i + 1];
    if (first === undefined || first < 0x80 || first > 0xbf) return 'invalid_utf8';
    if (first < min) return 'overlong_utf8';
    if (first > max) return 'invalid_utf8';
    for (let k = 2; k <= need; k++) {
      const x = b[i + k];
      if (x === undefined || x < 0x80 || x > 0xbf) return 'invalid_utf8';
    }
    if (c === 0xc2 && first <= 0x9f) return 'control_char';
    i += need + 1;
  }
  return null;
}

/** Lowercases A-Z only: Unicode case mapping folds look-alikes (U+212A KELVIN SIGN to k). */
export function asciiLower(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) return lowerFrom(s, i);
  }
  return s;
}

function lowerFrom(s: string, from: number): string {
  let out = s.slice(0, from);
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c >= 65 && c <= 90 ? String.fromCharCode(c + 32) : s[i];
  }
  return out;
}
