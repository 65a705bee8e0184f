import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { createHmac, createSecretKey } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  authorizationHeaderValue,
  canonicalHeaders,
  canonicalQuery,
  hmacHex,
  isSignatureExempt,
  parseAuthorizationHeader,
  type SignableRequest,
  signRequest,
  splitTarget,
  stringToSign,
  verifySignature,
} from '../../lib/signing/index.js';

const VECTOR_KEY = Buffer.from('4A404E635266556A586E3272357538782F413F4428472B4B6250645367566B59', 'hex');

test('spec vector 1: HMAC-SHA256 of "Hello world" with the hex-decoded key', () => {
  assert.equal(hmacHex(VECTOR_KEY, 'Hello world'), 'a15b46f621193876a6d3121b836dc2af4180e2786642e55235ef916fc5b082a3');
});

test('spec vector 2: canonical query', () => {
  const q =
    'comp=config&keyOnly&comp=again&type=hostingEnvironmentConfig&incarnation=1&resource=https%3a%2f%2fstorage.azure.com%2f';
  assert.equal(
    canonicalQuery(q),
    'comp=again&comp=config&incarnation=1&keyonly&resource=https%3a%2f%2fstorage.azure.com%2f&type=hostingEnvironmentConfig',
  );
});

test('canonical query edge cases: empty, empty keys dropped, duplicates removed, raw values kept', () => {
  assert.equal(canonicalQuery(''), '');
  assert.equal(canonicalQuery('&&=x&'), '');
  assert.equal(canonicalQuery('B=2&b=2&a=1'), 'a=1&b=2');
  assert.equal(canonicalQuery('x=%41&x=A'), 'x=%41&x=A');
  assert.equal(canonicalQuery('k=v=w'), 'k=v=w');
  assert.equal(canonicalQuery('a=&a'), 'a');
});

function req(over: Partial<SignableRequest> = {}): SignableRequest {
  return {
    method: 'GET',
    body: Buffer.alloc(0),
    headers: [
      ['Host', '169.254.169.254'],
      ['Metadata', 'true'],
      ['x-ms-azure-host-date', 'Wed, 23 Apr 2025 12:00:00 GMT'],
    ],
    rawPath: '/metadata/instance',
    rawQuery: 'api-version=2021-02-01',
    ...over,
  };
}

test('string to sign: method, body, sorted lowercase headers, raw path, canonical query', () => {
  const s = stringToSign(req()).toString('latin1');
  assert.equal(
    s,
    'GET\n\nhost:169.254.169.254\nmetadata:true\nx-ms-azure-host-date:Wed, 23 Apr 2025 12:00:00 GMT\n/metadata/instance\napi-version=2021-02-01',
  );
});

test('repeated headers: last value wins; values trimmed; authorization header excluded', () => {
  const s = stringToSign(
    req({
      headers: [
        ['X-A', 'first'],
        ['x-a', '  last \t'],
        ['x-ms-azure-host-authorization', 'Azure-HMAC-SHA256 g h'],
      ],
      rawQuery: '',
    }),
  ).toString('latin1');
  assert.equal(s, 'GET\n\nx-a:last\n/metadata/instance\n');
});

test('raw path is signed undecoded; binary body bytes are signed exactly', () => {
  const body = Buffer.from([0, 255, 10, 13, 128, 0x41]);
  const bytes = stringToSign(req({ method: 'POST', body, rawPath: '/a%2Fb/%7e', headers: [] }));
  assert.deepEqual(
    bytes,
    Buffer.concat([Buffer.from('POST\n'), body, Buffer.from('\n/a%2Fb/%7e\napi-version=2021-02-01')]),
  );
});

test('signRequest equals HMAC over stringToSign, with a Buffer or a prepared KeyObject', () => {
  const r = req({ method: 'POST', body: Buffer.from([1, 2, 3, 0xff]) });
  const expected = createHmac('sha256', VECTOR_KEY).update(stringToSign(r)).digest('hex');
  assert.equal(signRequest(VECTOR_KEY, r), expected);
  assert.equal(signRequest(createSecretKey(VECTOR_KEY), r), expected);
  assert.match(expected, /^[0-9a-f]{64}$/);
});

test('verifySignature rejects tampered method, header, path, query and body', () => {
  const base = req({ method: 'POST', body: Buffer.from('payload') });
  const sig = signRequest(VECTOR_KEY, base);
  assert.equal(verifySignature(VECTOR_KEY, base, sig), true);
  const tampered: SignableRequest[] = [
    { ...base, method: 'PUT' },
    { ...base, body: Buffer.from('payloae') },
    { ...base, rawPath: '/metadata/Instance' },
    { ...base, rawQuery: 'api-version=2021-02-02' },
    {
      ...base,
      headers: [
        ['Host', '169.254.169.254'],
        ['Metadata', 'false'],
      ],
    },
  ];
  for (const t of tampered) assert.equal(verifySignature(VECTOR_KEY, t, sig), false);
  assert.equal(verifySignature(VECTOR_KEY, base, 'zz'), false);
});

test('authorization header value round-trips and rejects malformed values', () => {
  const guid = '0b8f3c1e-6a3b-4a44-9f29-2c1d5e6f7a8b';
  const hex = 'a'.repeat(64);
  const v = authorizationHeaderValue(guid, hex);
  assert.equal(v, `Azure-HMAC-SHA256 ${guid} ${hex}`);
  assert.deepEqual(parseAuthorizationHeader(v), { guid, hex });
  assert.equal(parseAuthorizationHeader(`Bearer ${guid} ${hex}`), null);
  assert.equal(parseAuthorizationHeader(`Azure-HMAC-SHA256 ../x ${hex}`), null);
  assert.equal(parseAuthorizationHeader(`Azure-HMAC-SHA256 ${guid} ${hex.toUpperCase()}`), null);
  // The GUID in either case, 8-4-4-4-12; the signature exactly 64 lowercase hex digits.
  assert.deepEqual(parseAuthorizationHeader(`Azure-HMAC-SHA256 ${guid.toUpperCase()} ${hex}`), {
    guid: guid.toUpperCase(),
    hex,
  });
  for (const bad of [
    guid.replace('-', ''),
    guid.replace('6a3b-', '6a3b4'),
    `${guid}0`,
    guid.replace('b', 'g'),
    guid.replace('0', '/'),
    guid.replace('0', ':'),
  ])
    assert.equal(parseAuthorizationHeader(`Azure-HMAC-SHA256 ${bad} ${hex}`), null, bad);
  for (const bad of [
    hex.slice(1),
    `${hex}0`,
    `${hex.slice(1)}g`,
    `${hex.slice(1)}/`,
    `${hex.slice(1)}:`,
    `${hex.slice(1)}\``,
  ])
    assert.equal(parseAuthorizationHeader(`Azure-HMAC-SHA256 ${guid} ${bad}`), null, bad);
  assert.deepEqual(parseAuthorizationHeader(`Azure-HMAC-SHA256 ${guid} ${'0123456789abcdef'.repeat(4)}`), {
    guid,
    hex: '0123456789abcdef'.repeat(4),
  });
});

test('signature-exempt targets are exactly the two upload paths, case-insensitive', () => {
  assert.equal(isSignatureExempt('PUT', '/vmAgentLog'), true);
  assert.equal(isSignatureExempt('put', '/VMAGENTLOG'), true);
  assert.equal(isSignatureExempt('POST', '/machine/?comp=telemetrydata'), true);
  assert.equal(isSignatureExempt('GET', '/vmAgentLog'), false);
  assert.equal(isSignatureExempt('PUT', '/vmAgentLog/x'), false);
  assert.equal(isSignatureExempt('POST', '/machine/?comp=telemetrydata&x=1'), false);
});

test('splitTarget splits at the first question mark only', () => {
  assert.deepEqual(splitTarget('/a?b=1?c'), { rawPath: '/a', rawQuery: 'b=1?c' });
  assert.deepEqual(splitTarget('/a'), { rawPath: '/a', rawQuery: '' });
});

/** The spec's definition, written the obvious way: the reference the fast path must match. */
function canonicalHeadersReference(headers: [string, string][]): string {
  const byName = new Map<string, string>();
  for (const [n, v] of headers) if (n.toLowerCase() !== 'x-ms-azure-host-authorization') byName.set(n.toLowerCase(), v);
  return [...byName.keys()]
    .sort()
    .map((n) => `${n}:${byName.get(n)!.replace(/^[ \t]+|[ \t]+$/g, '')}\n`)
    .join('');
}

test('canonicalHeaders matches the reference for any header list (duplicates, case, many names)', () => {
  const name = fc.oneof(
    fc.constantFrom(
      'Host',
      'host',
      'Metadata',
      'x-ms-azure-host-date',
      'X-MS-AZURE-HOST-AUTHORIZATION',
      'a',
      'A',
      'b-',
    ),
    fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}$/),
  );
  const value = fc.stringMatching(/^[ \t]{0,2}[\x21-\x7e\xa0-\xff]{0,8}[ \t]{0,2}$/);
  fc.assert(
    fc.property(fc.array(fc.tuple(name, value), { maxLength: 60 }), (headers) => {
      assert.equal(canonicalHeaders(headers), canonicalHeadersReference(headers));
    }),
    { numRuns: 2000 },
  );
});
