import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { after, before, test } from 'node:test';
import { type Emulator, startEmulator } from '../../lib/emulator/index.js';
import { acquireKey, hostHeaders, rawRequest, signedHeaders, signHeaders } from './raw-http.js';

let emu: Emulator;
before(async () => {
  emu = await startEmulator({
    settings: { version: '2.0', enabled: true, modes: { imds: 'enforce', wireserver: 'enforce' } },
  });
});
after(async () => {
  await emu.close();
});

const imds = () => emu.addresses.imds;
const ws = () => emu.addresses.wireserver;
const BASE: [string, string][] = [
  ['Host', '169.254.169.254'],
  ['Metadata', 'true'],
];

test('binds the loopback aliases on ephemeral ports and reports them', () => {
  assert.equal(imds().host, '127.254.169.254');
  assert.equal(ws().host, '127.63.129.16');
  assert.ok(imds().port > 0 && ws().port > 0 && emu.addresses.hostga.port > 0);
  assert.notEqual(ws().port, emu.addresses.hostga.port);
  assert.match(emu.controlUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
});

test('library signature verifies at the emulator; every tampered part fails with 401', async () => {
  const key = await acquireKey(ws().host, ws().port);
  const target = '/metadata/instance?api-version=2021-02-01&format=json';
  const ok = await rawRequest(imds().host, imds().port, 'GET', target, signedHeaders(key, 'GET', target, BASE));
  assert.equal(ok.status, 200);
  assert.equal((JSON.parse(ok.body) as { compute: { osType: string } }).compute.osType, 'Linux');
  const last = emu.journal().at(-1)!;
  assert.equal(last.signature, 'valid');
  assert.deepEqual(last.claims, { isRoot: 'true' });

  const body = Buffer.from([0, 1, 2, 250]);
  const postTarget = '/metadata/identity/oauth2/token?api-version=2021-02-01&resource=x';
  const signed = signedHeaders(key, 'POST', postTarget, BASE, body);
  const cases: { what: string; target: string; headers: [string, string][]; body: Buffer }[] = [
    { what: 'header', target: postTarget, headers: signed.map(([n, v]) => [n, n === 'Metadata' ? 'TRUE' : v]), body },
    { what: 'path', target: postTarget.replace('token', 'Token'), headers: signed, body },
    { what: 'query', target: postTarget + '&x=1', headers: signed, body },
    { what: 'body', target: postTarget, headers: signed, body: Buffer.from([0, 1, 2, 251]) },
  ];
  for (const c of cases) {
    const r = await rawRequest(imds().host, imds().port, 'POST', c.target, c.headers, c.body);
    assert.equal(r.status, 401, `tampered ${c.what}`);
    assert.equal(emu.journal().at(-1)!.signature, 'invalid', `tampered ${c.what}`);
  }
  const good = await rawRequest(imds().host, imds().port, 'POST', postTarget, signed, body);
  assert.equal(good.status, 200);
  assert.equal(emu.journal().at(-1)!.signature, 'valid');
});

test('bodiless and chunked requests verify alike: answered at once or after the whole body', async () => {
  const key = await acquireKey(ws().host, ws().port);
  const base: [string, string][] = [...hostHeaders(BASE), ['Connection', 'close']];
  // No Content-Length, no Transfer-Encoding: the request has no body (the common GET).
  const target = '/metadata/instance?api-version=2021-02-01';
  const get = await rawRequest(
    imds().host,
    imds().port,
    'GET',
    target,
    signHeaders(key, 'GET', target, base, Buffer.alloc(0)),
  );
  assert.equal(get.status, 200);
  assert.equal(emu.journal().at(-1)!.signature, 'valid');
  const tamperedGet = signHeaders(key, 'GET', target, base, Buffer.alloc(0)).map(([n, v]): [string, string] =>
    n === 'Metadata' ? [n, 'TRUE'] : [n, v],
  );
  assert.equal((await rawRequest(imds().host, imds().port, 'GET', target, tamperedGet)).status, 401);

  // A chunked body: the signature covers the decoded bytes, which arrive in two chunks.
  const body = Buffer.from('resource=https%3A%2F%2Fmanagement.azure.com%2F');
  const postTarget = '/metadata/identity/oauth2/token?api-version=2021-02-01&resource=x';
  const chunked = [...base, ['Transfer-Encoding', 'chunked']] as [string, string][];
  const wire = (b: Buffer) =>
    Buffer.concat([
      Buffer.from(`${(10).toString(16)}\r\n`),
      b.subarray(0, 10),
      Buffer.from(`\r\n${(b.length - 10).toString(16)}\r\n`),
      b.subarray(10),
      Buffer.from('\r\n0\r\n\r\n'),
    ]);
  const post = await rawRequest(
    imds().host,
    imds().port,
    'POST',
    postTarget,
    signHeaders(key, 'POST', postTarget, chunked, body),
    wire(body),
  );
  assert.equal(post.status, 200);
  assert.equal(emu.journal().at(-1)!.signature, 'valid');
  assert.equal(emu.journal().at(-1)!.bodyLength, body.length);
  const other = Buffer.from(body);
  other[other.length - 1] = 0x41;
  const bad = await rawRequest(
    imds().host,
    imds().port,
    'POST',
    postTarget,
    signHeaders(key, 'POST', postTarget, chunked, body),
    wire(other),
  );
  assert.equal(bad.status, 401);
  assert.equal(emu.journal().at(-1)!.signature, 'invalid');
});

test('unsigned requests: 401 in Enforce, forwarded in Audit; exempt uploads pass unsigned', async () => {
  const target = '/metadata/instance?api-version=2021-02-01';
  const hdrs: [string, string][] = [...BASE, ['Connection', 'close']];
  assert.equal((await rawRequest(imds().host, imds().port, 'GET', target, hdrs)).status, 401);
  assert.equal(emu.journal().at(-1)!.signature, 'missing');
  emu.configure({ modes: { imds: 'audit' } });
  try {
    assert.equal((await rawRequest(imds().host, imds().port, 'GET', target, hdrs)).status, 200);
  } finally {
    emu.configure({ modes: { imds: 'enforce' } });
  }
  const log = await rawRequest(
    ws().host,
    ws().port,
    'PUT',
    '/vmAgentLog',
    [
      ['Content-Length', '3'],
      ['Connection', 'close'],
    ],
    Buffer.from('abc'),
  );
  assert.equal(log.status, 201);
  assert.equal(emu.journal().at(-1)!.signature, 'exempt');
  assert.equal(emu.journal().at(-1)!.bodyLength, 3);
  const tel = await rawRequest(ws().host, ws().port, 'POST', '/machine/?comp=telemetrydata', [
    ['Content-Length', '0'],
    ['Connection', 'close'],
  ]);
  assert.equal(tel.status, 200);
  const gs = await rawRequest(ws().host, ws().port, 'GET', '/machine/?comp=goalstate', [['Connection', 'close']]);
  assert.equal(gs.status, 401, 'goal state unsigned in Enforce');
});

test('IMDS demands Metadata: true and an api-version, like the real service', async () => {
  emu.configure({ modes: { imds: 'disabled' } });
  try {
    const c: [string, string][] = [['Connection', 'close']];
    assert.equal(
      (await rawRequest(imds().host, imds().port, 'GET', '/metadata/instance?api-version=2021-02-01', c)).status,
      400,
    );
    const m: [string, string][] = [
      ['Metadata', 'true'],
      ['Connection', 'close'],
    ];
    assert.equal((await rawRequest(imds().host, imds().port, 'GET', '/metadata/instance', m)).status, 400);
    const v = await rawRequest(imds().host, imds().port, 'GET', '/metadata/versions', m);
    assert.equal(v.status, 200);
    assert.ok((JSON.parse(v.body) as { apiVersions: string[] }).apiVersions.includes('2021-02-01'));
    const t = await rawRequest(
      imds().host,
      imds().port,
      'GET',
      '/metadata/identity/oauth2/token?api-version=2021-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F',
      m,
    );
    const tok = JSON.parse(t.body) as { access_token: string; token_type: string; resource: string };
    assert.equal(tok.token_type, 'Bearer');
    assert.equal(tok.resource, 'https://management.azure.com/');
    assert.equal(tok.access_token.split('.').length, 3);
  } finally {
    emu.configure({ modes: { imds: 'enforce' } });
  }
});

test('key attestation must be signed with the new key', async () => {
  const reset = emu.resetKey();
  const key = await acquireKey(ws().host, ws().port);
  assert.equal(key.guid, reset.guid);
  const target = `/secure-channel/key/${key.guid}/key-attestation`;
  const base: [string, string][] = [
    ['Host', '168.63.129.16'],
    ['Metadata', 'True'],
  ];
  const wrong = signedHeaders({ guid: key.guid, bytes: Buffer.alloc(32, 7) }, 'POST', target, base);
  assert.equal((await rawRequest(ws().host, ws().port, 'POST', target, wrong)).status, 401);
  assert.equal(emu.state().key?.attested, false);
  assert.equal(
    (await rawRequest(ws().host, ws().port, 'POST', target, signedHeaders(key, 'POST', target, base))).status,
    200,
  );
  assert.equal(emu.state().key?.attested, true);
  assert.equal(emu.journal().at(-1)!.signature, 'valid');
});

test('journal records raw target, raw header pairs, peer, claims and status', async () => {
  emu.clearJournal();
  await rawRequest(ws().host, ws().port, 'GET', '/machine/?comp=goalstate&A=%2F', [
    ['X-Mixed-Case', ' v '],
    ['x-ms-azure-host-claims', 'not json'],
    ['Connection', 'close'],
  ]);
  const [e] = emu.journal();
  assert.ok(e);
  assert.equal(e.endpoint, 'wireserver');
  assert.equal(e.rawTarget, '/machine/?comp=goalstate&A=%2F');
  assert.deepEqual(e.headers[0], ['X-Mixed-Case', 'v']);
  assert.equal(e.peer.address, '127.0.0.1');
  assert.ok(e.peer.port > 0);
  assert.equal(e.claims, null);
  assert.equal(e.status, 401);
  assert.equal(e.signature, 'missing');
});
