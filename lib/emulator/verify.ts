import type { Buffer } from 'node:buffer';
import { AUTHORIZATION_HEADER, parseAuthorizationHeader, verifySignature } from '../signing/index.js';
import type { HostKey } from './host-state.js';
import type { SignatureVerdict } from './journal.js';

/** Checks a request's `x-ms-azure-host-authorization` against the host's latched key. */
export function verifyRequest(
  key: HostKey | null,
  method: string,
  rawPath: string,
  rawQuery: string,
  headers: [string, string][],
  body: Buffer,
): SignatureVerdict {
  let auth: string | undefined;
  for (const [n, v] of headers)
    if (n.length === AUTHORIZATION_HEADER.length && n.toLowerCase() === AUTHORIZATION_HEADER) auth = v;
  if (auth === undefined) return 'missing';
  const parsed = parseAuthorizationHeader(auth);
  if (!parsed || !key || parsed.guid.toLowerCase() !== key.guid.toLowerCase()) return 'invalid';
  return verifySignature(key.signingKey, { method, body, headers, rawPath, rawQuery }, parsed.hex)
    ? 'valid'
    : 'invalid';
}
