import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  controlRequest,
  type Emulator,
  type HostStateView,
  type JournalEntry,
  startEmulator,
} from '../../lib/emulator/index.js';
import { rawRequest } from './raw-http.js';

let emu: Emulator;
before(async () => {
  emu = await startEmulator({ settings: { enabled: true, modes: { imds: 'audit', wireserver: 'audit' } } });
});
after(async () => {
  await emu.close();
});

const C: [string, string][] = [['Connection', 'close']];
const status = () =>
  rawRequest(
    emu.addresses.wireserver.host,
    emu.addresses.wireserver.port,
    'GET',
    '/secure-channel/status',
    C,
    undefined,
    2000,
  );

test('a counted 5xx fault hits exactly that many matching requests', async () => {
  emu.setFault({ endpoint: 'wireserver', path: '/secure-channel/', kind: 'status', status: 503, count: 2 });
  assert.equal((await status()).status, 503);
  assert.equal((await status()).status, 503);
  const ok = await status();
  assert.equal(ok.status, 200);
  assert.equal((JSON.parse(ok.body) as { version: string }).version, '2.0');
  assert.deepEqual(emu.faults(), []);
});

test('reset, malformed JSON, body override, delay and timeout faults', async () => {
  emu.setFault({ path: '/secure-channel/status', kind: 'reset', count: 1 });
  await assert.rejects(status());
  emu.setFault({ path: '/secure-channel/status', kind: 'malformed-json', count: 1 });
  const bad = await status();
  assert.equal(bad.status, 200);
  assert.throws(() => JSON.parse(bad.body));
  emu.setFault({ path: '/secure-channel/status', kind: 'body', body: '[1,2]', count: 1 });
  assert.equal((await status()).body, '[1,2]');
  emu.setFault({ path: '/secure-channel/status', kind: 'delay', delayMs: 50, count: 1 });
  assert.equal((await status()).status, 200);
  assert.match(emu.journal().at(-1)!.fault ?? '', /^delay#/);
  emu.setFault({ path: '/secure-channel/status', kind: 'timeout' });
  await assert.rejects(status(), /timeout/);
  assert.equal(emu.journal().at(-1)!.status, null);
  emu.clearFaults();
  assert.equal((await status()).status, 200);
});

test('control API over HTTP mirrors the in-process methods', async () => {
  const url = emu.controlUrl!;
  const st = (await controlRequest(url, 'POST', '/configure', {
    version: '1.0',
    v1State: 'Wireserver',
  })) as HostStateView;
  assert.deepEqual(st.hostModes, { imds: 'audit', wireserver: 'enforce', hostga: 'enforce' });
  assert.equal((st.status as { secureChannelState: string }).secureChannelState, 'Wireserver');
  const before = emu.state().keyIncarnationId;
  const reset = (await controlRequest(url, 'POST', '/key/reset')) as { guid: string; incarnationId: number };
  assert.equal(reset.incarnationId, before + 1);
  const { id } = (await controlRequest(url, 'POST', '/faults', { kind: 'status', status: 500 })) as { id: number };
  assert.equal(emu.faults().length, 1);
  await controlRequest(url, 'DELETE', `/faults/${id}`);
  assert.equal(emu.faults().length, 0);
  await controlRequest(url, 'DELETE', '/journal');
  await status();
  const j = (await controlRequest(url, 'GET', '/journal')) as JournalEntry[];
  assert.equal(j.length, 1);
  assert.equal(j[0]!.rawTarget, '/secure-channel/status');
  assert.equal(((await controlRequest(url, 'GET', `/journal?since=${j[0]!.seq}`)) as JournalEntry[]).length, 0);
  await assert.rejects(
    controlRequest(url, 'POST', '/configure', { modes: { imds: 'sometimes' } }),
    /modes\.imds must be one of/,
  );
  await assert.rejects(controlRequest(url, 'POST', '/faults', { kind: 'explode' }), /fault\.kind/);
  await assert.rejects(controlRequest(url, 'GET', '/nope'), /404/);
  emu.configure({ version: '2.0' });
});

test('control API on a Unix socket; a non-loopback control address is refused', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gpa-emu-'));
  const e2 = await startEmulator({ control: { socketPath: path.join(dir, 'ctl.sock') } });
  try {
    assert.equal(e2.controlUrl, `unix:${path.join(dir, 'ctl.sock')}`);
    const st = (await controlRequest(e2.controlUrl!, 'GET', '/state')) as HostStateView;
    assert.equal(st.settings.enabled, false);
  } finally {
    await e2.close();
    rmSync(dir, { recursive: true, force: true });
  }
  await assert.rejects(startEmulator({ control: { host: '169.254.169.254', port: 0 } }), /not loopback/);
});

test('hostile input never takes the emulator down', async () => {
  const { host, port } = emu.addresses.imds;
  const garbage = await new Promise<string>((resolve) => {
    const s = connect({ host, port }, () => s.end(Buffer.from('\x00\xff GARBAGE\r\n\r\n', 'latin1')));
    let out = '';
    s.on('data', (c) => (out += c.toString('latin1')));
    s.on('close', () => resolve(out));
    s.on('error', () => resolve(out));
  });
  assert.match(garbage, /^HTTP\/1\.1 400/);
  const big = Buffer.alloc(2 * 1024 * 1024, 0x61);
  const r = await rawRequest(
    host,
    port,
    'POST',
    '/metadata/instance',
    [
      ['Content-Length', String(big.length)],
      ['Connection', 'close'],
    ],
    big,
  ).catch((e: Error) => ({ status: -1, body: e.message }));
  assert.ok(r.status === 413 || r.status === -1, `oversized body: ${r.status}`);
  const weird = await rawRequest(host, port, 'GET', '/metadata/instance/%ZZ/../..?api-version=%', [
    ['Metadata', 'true'],
    ['Connection', 'close'],
  ]);
  assert.equal(weird.status, 400);
  const ok = await rawRequest(host, port, 'GET', '/metadata/versions', [
    ['Metadata', 'true'],
    ['Connection', 'close'],
  ]);
  assert.equal(ok.status, 200);
});
