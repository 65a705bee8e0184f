import type { Buffer } from 'node:buffer';
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { type SignableRequest, signingParts } from './string-to-sign.js';

/** The only authorization scheme the host speaks. */
export const AUTHORIZATION_SCHEME = 'Azure-HMAC-SHA256';

/** True for exactly 64 lowercase hex digits (a signature as the spec writes it). */
function isLowerHex64(s: string): boolean {
  if (s.length !== 64) return false;
  for (let i = 0; i < 64; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/** True for a GUID in its 8-4-4-4-12 hex form, either case. */
function isGuid(s: string): boolean {
  if (s.length !== 36) return false;
  for (let i = 0; i < 36; i++) {
    const c = s.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false;
    } else if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70))) return false;
  }
  return true;
}

/**
 * The addon's HMAC-SHA256 (Linux builds, native/src/posix/hmac_sha256.h): about 0.4 µs per request
 * against node:crypto's 1.7. Handed in by whoever loaded the addon; lib/signing loads nothing.
 */
export interface NativeHmac {
  readonly hmacSha256Available?: boolean;
  /** The key's precomputed inner and outer SHA-256 states, as an opaque handle. */
  hmacSha256Key(key: Uint8Array): unknown;
  /** HMAC over head + body + tail, the strings as latin1 (as `update(s, 'latin1')`), lowercase hex. */
  hmacSha256Hex(key: unknown, head: string, body: Uint8Array | null, tail: string): string;
}

/**
 * A key prepared once for signing many requests (per key snapshot, per thread): the addon's
 * precomputed state when an addon with HMAC is given, else node:crypto's `KeyObject`.
 */
export class SigningKey {
  private readonly native: NativeHmac | null;
  /** The addon's handle, or the KeyObject node:crypto signs with. */
  private readonly key: unknown;

  constructor(bytes: Uint8Array, native: NativeHmac | null = null) {
    this.native = native !== null && native.hmacSha256Available !== false ? native : null;
    this.key = this.native !== null ? this.native.hmacSha256Key(bytes) : createSecretKey(bytes);
  }

  /** True when requests are signed by the addon. */
  get isNative(): boolean {
    return this.native !== null;
  }

  /** HMAC-SHA256 over head + body + tail (strings as latin1), lowercase hex. */
  hex(head: string, body: Buffer, tail: string): string {
    if (this.native !== null) return this.native.hmacSha256Hex(this.key, head, body.length > 0 ? body : null, tail);
    return nodeHmacHex(this.key as KeyObject, head, body, tail);
  }
}

/** node:crypto's HMAC-SHA256 over head + body + tail (strings as latin1), lowercase hex. */
function nodeHmacHex(key: Buffer | KeyObject, head: string, body: Buffer, tail: string): string {
  const mac = createHmac('sha256', key);
  // Most metadata requests have no body: one update instead of three native calls.
  if (body.length === 0) return mac.update(head + tail, 'latin1').digest('hex');
  return mac.update(head, 'latin1').update(body).update(tail, 'latin1').digest('hex');
}

/**
 * HMAC-SHA256 of the string to sign, as 64 lowercase hex. On the per-request path: one HMAC, the
 * body fed straight in (never copied), the canonical text built once. A `SigningKey` prepared per
 * key snapshot saves re-importing the key on every request, and signs in the addon where it can.
 */
export function signRequest(key: Buffer | KeyObject | SigningKey, req: SignableRequest): string {
  const { head, tail } = signingParts(req);
  return key instanceof SigningKey ? key.hex(head, req.body, tail) : nodeHmacHex(key, head, req.body, tail);
}

/** HMAC-SHA256 of arbitrary bytes, lowercase hex (the spec's first test vector). */
export function hmacHex(key: Buffer | KeyObject, message: Buffer | string): string {
  return createHmac('sha256', key).update(message).digest('hex');
}

/** The `x-ms-azure-host-authorization` value: `Azure-HMAC-SHA256 <guid> <hex>`. */
export function authorizationHeaderValue(guid: string, hex: string): string {
  return AUTHORIZATION_SCHEME + ' ' + guid + ' ' + hex;
}

/** Parses an authorization value; null when it is not `Azure-HMAC-SHA256 <guid> <64 hex>`. */
export function parseAuthorizationHeader(value: string): { guid: string; hex: string } | null {
  const parts = value.trim().split(' ');
  if (parts.length !== 3 || parts[0] !== AUTHORIZATION_SCHEME) return null;
  const guid = parts[1]!;
  const hex = parts[2]!;
  if (!isGuid(guid) || !isLowerHex64(hex)) return null;
  return { guid, hex };
}

/** Constant-time check of a received signature against the expected one for this key and request. */
export function verifySignature(key: Buffer | KeyObject | SigningKey, req: SignableRequest, hex: string): boolean {
  if (!isLowerHex64(hex)) return false;
  return sameHex(signRequest(key, req), hex);
}

/**
 * Compares two 64-character hex strings in time independent of where they differ (the digests'
 * text, so no Buffer per request as with crypto.timingSafeEqual).
 */
function sameHex(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
