// The addon's HMAC-SHA256 (native/src/posix/hmac_sha256.h), which signs the agent's requests on
// Linux, checked against node:crypto: the spec's vector, then random keys, strings and bodies.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { nativeHmac } from '../../lib/redirector/index.js';
import { type SignableRequest, SigningKey, signRequest, verifySignature } from '../../lib/signing/index.js';

const VECTOR_KEY = Buffer.from('4A404E635266556A586E3272357538782F413F4428472B4B6250645367566B59', 'hex');
const hmac = nativeHmac();
const linuxOnly = { skip: process.platform !== 'linux' ? 'the addon has HMAC-SHA256 on Linux builds only' : false };

function reference(key: Uint8Array, head: string, body: Uint8Array, tail: string): string {
  return createHmac('sha256', key).update(head, 'latin1').update(body).update(tail, 'latin1').digest('hex');
}

test('the Linux addon has HMAC-SHA256, and a SigningKey made with it signs in the addon', linuxOnly, () => {
  assert.ok(hmac !== null, 'nativeHmac() is null: rebuild the addon');
  assert.equal(new SigningKey(VECTOR_KEY, hmac).isNative, true);
  assert.equal(new SigningKey(VECTOR_KEY).isNative, false);
});

test('spec vector 1 through the addon: HMAC-SHA256 of "Hello world"', linuxOnly, () => {
  const k = hmac!.hmacSha256Key(VECTOR_KEY);
  assert.equal(
    hmac!.hmacSha256Hex(k, 'Hello ', null, 'world'),
    'a15b46f621193876a6d3121b836dc2af4180e2786642e55235ef916fc5b082a3',
  );
});

test('addon HMAC equals node:crypto for any key, latin1 text and body', linuxOnly, () => {
  const latin1 = fc.string({ unit: fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c)) });
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 200 }),
      latin1,
      fc.uint8Array({ minLength: 0, maxLength: 300 }),
      fc.oneof(latin1, fc.string({ minLength: 2000, maxLength: 5000 })),
      (key, head, body, tail) => {
        const k = hmac!.hmacSha256Key(key);
        assert.equal(hmac!.hmacSha256Hex(k, head, body, tail), reference(key, head, body, tail));
      },
    ),
    { numRuns: 300 },
  );
});

test('characters above U+00FF hash as their low byte, as update(s, "latin1") does', linuxOnly, () => {
  const key = Buffer.from('k');
  const text = 'a\u0101\u20ac\ud83d\ude00z';
  const k = hmac!.hmacSha256Key(key);
  assert.equal(hmac!.hmacSha256Hex(k, text, null, ''), reference(key, text, Buffer.alloc(0), ''));
});

test('signRequest with a native SigningKey verifies with node:crypto, and catches tampering', linuxOnly, () => {
  const req: SignableRequest = {
    method: 'POST',
    body: Buffer.from([0, 1, 2, 0xff]),
    headers: [
      ['Metadata', 'true'],
      ['x-ms-azure-host-claims', '{"runAsElevated": false}'],
    ],
    rawPath: '/metadata/instance',
    rawQuery: 'api-version=2021-02-01&b=%20',
  };
  const sig = signRequest(new SigningKey(VECTOR_KEY, hmac), req);
  assert.equal(sig, signRequest(VECTOR_KEY, req));
  assert.equal(verifySignature(VECTOR_KEY, req, sig), true);
  assert.equal(verifySignature(VECTOR_KEY, { ...req, rawPath: '/metadata/instance/x' }, sig), false);
  assert.equal(signRequest(new SigningKey(VECTOR_KEY, hmac), { ...req, body: Buffer.alloc(0) }).length, 64);
});

test('the addon refuses a handle it did not make', linuxOnly, () => {
  assert.throws(() => hmac!.hmacSha256Hex({}, 'a', null, 'b'), /hmacSha256Key/);
  assert.throws(() => hmac!.hmacSha256Hex(hmac!.hmacSha256Key(VECTOR_KEY), 'a', 'x' as never, 'b'), /body/);
});
