import { Buffer } from 'node:buffer';
import { createHmac, type KeyObject, timingSafeEqual } from 'node:crypto';
import { type SignableRequest, signingParts } from './string-to-sign.js';

/** The only authorization scheme the host speaks. */
export const AUTHORIZATION_SCHEME = 'Azure-HMAC-SHA256';

const HEX64 = /^[0-9a-f]{64}$/;
const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * HMAC-SHA256 of the string to sign, as 64 lowercase hex. On the per-request path: one HMAC, the
 * body fed straight in (never copied), the canonical text built once. A `KeyObject` prepared per key
 * snapshot (`createSecretKey`) saves re-importing the key on every request.
 */
export function signRequest(key: Buffer | KeyObject, req: SignableRequest): string {
  const { head, tail } = signingParts(req);
  const mac = createHmac('sha256', key);
  // Most metadata requests have no body: one update instead of three native calls.
  if (req.body.length === 0) return mac.update(head + tail, 'latin1').digest('hex');
  return mac.update(head, 'latin1').update(req.body).update(tail, 'latin1').digest('hex');
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
  if (!GUID.test(guid) || !HEX64.test(hex)) return null;
  return { guid, hex };
}

/** Constant-time check of a received signature against the expected one for this key and request. */
export function verifySignature(key: Buffer | KeyObject, req: SignableRequest, hex: string): boolean {
  if (!HEX64.test(hex)) return false;
  const expected = Buffer.from(signRequest(key, req), 'hex');
  return timingSafeEqual(expected, Buffer.from(hex, 'hex'));
}
