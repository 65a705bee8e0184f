import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type Emulator, startEmulator } from '../../lib/emulator/index.js';
import type { KeySnapshot } from '../../lib/keykeeper/index.js';
import { rawRequest, signedHeaders } from '../emulator/raw-http.js';
import { keeperFor, scratch } from './helpers.js';

let emu: Emulator;
const dir = scratch();
before(async () => {
  emu = await startEmulator({ control: null });
});
after(async () => {
  await emu.close();
  dir.cleanup();
});

const acquires = () => emu.journal().filter((e) => e.method === 'POST' && e.rawTarget === '/secure-channel/key').length;

async function signedImdsStatus(snap: KeySnapshot): Promise<number> {
  const target = '/metadata/instance?api-version=2021-02-01';
  const h = signedHeaders(snap.key!, 'GET', target, [
    ['Host', '169.254.169.254'],
    ['Metadata', 'true'],
  ]);
  return (await rawRequest(emu.addresses.imds.host, emu.addresses.imds.port, 'GET', target, h)).status;
}

test('key lifecycle: disabled → enforce with key A → reset to key B → outage → recovery → restart reuses B', async () => {
  const keeper = keeperFor(emu, dir.keys);
  const published: KeySnapshot[] = [];
  keeper.on('snapshot', (s: KeySnapshot) => published.push(s));

  // Disabled: no key, nothing intercepted.
  let s = await keeper.pollOnce();
  assert.equal(s.health, 'ok');
  assert.equal(s.secureChannelState, 'disabled');
  assert.deepEqual({ ...s.modes }, { imds: 'disabled', wireserver: 'disabled', hostga: 'disabled' });
  assert.equal(s.key, undefined);
  assert.equal(acquires(), 0);

  // Enforce: key A acquired, stored, attested (signed, seen in the journal), usable at the host.
  emu.configure({ enabled: true, modes: { imds: 'enforce', wireserver: 'enforce' } });
  s = await keeper.pollOnce();
  assert.equal(s.health, 'ok', s.statusMessage);
  assert.equal(s.secureChannelState, 'WireServer Enforce -  IMDS Enforce - HostGA Enforce');
  const keyA = s.key!;
  assert.equal(keyA.guid, emu.state().key?.guid);
  const att = emu.journal().filter((e) => e.rawTarget === `/secure-channel/key/${keyA.guid}/key-attestation`);
  assert.equal(att.length, 1);
  assert.equal(att[0]!.signature, 'valid');
  assert.equal(att[0]!.status, 200);
  assert.deepEqual(att[0]!.claims, { isRoot: 'true' });
  assert.equal(emu.state().key?.attested, true);
  assert.equal(await signedImdsStatus(s), 200);
  assert.ok(Object.isFrozen(s) && Object.isFrozen(s.modes));

  // Owner resets the key: B within one poll, new incarnation.
  const reset = emu.resetKey();
  s = await keeper.pollOnce();
  assert.equal(s.key?.guid, reset.guid);
  assert.equal(s.keyIncarnationId, reset.incarnationId);
  assert.notEqual(s.key?.guid, keyA.guid);
  assert.equal(await signedImdsStatus(s), 200);
  const keyB = s.key!;
  const good = s;

  // Outage: 5xx, timeouts, resets, malformed JSON. Last key and modes kept; degraded; no throw.
  emu.setFault({ endpoint: 'wireserver', path: '/secure-channel/', kind: 'status', status: 503, count: 2 });
  emu.setFault({ endpoint: 'wireserver', path: '/secure-channel/', kind: 'timeout', count: 2 });
  emu.setFault({ endpoint: 'wireserver', path: '/secure-channel/', kind: 'reset', count: 1 });
  emu.setFault({ endpoint: 'wireserver', path: '/secure-channel/', kind: 'malformed-json', count: 1 });
  const messages: string[] = [];
  for (let i = 0; i < 6; i++) {
    s = await keeper.pollOnce();
    assert.equal(s.health, 'degraded');
    assert.equal(s.key?.guid, keyB.guid);
    assert.deepEqual(s.modes, good.modes);
    assert.deepEqual(s.rules, good.rules);
    assert.equal(s.secureChannelState, good.secureChannelState);
    messages.push(s.statusMessage);
  }
  assert.match(messages[0]!, /HTTP 503.*keeping the last good key/);
  assert.match(messages[2]!, /timed out/);
  assert.match(messages[5]!, /not valid JSON/);

  // Recovery.
  s = await keeper.pollOnce();
  assert.equal(s.health, 'ok');
  assert.equal(s.key?.guid, keyB.guid);
  assert.ok(published.length >= 5 && published.every((p, i) => i === 0 || p.epoch === published[i - 1]!.epoch + 1));
  await keeper.stop();

  // Restart: the stored key B is reused without a new acquire.
  const before = acquires();
  const again = keeperFor(emu, dir.keys);
  s = await again.pollOnce();
  assert.equal(s.key?.guid, keyB.guid);
  assert.deepEqual(s.key?.bytes, keyB.bytes);
  assert.equal(acquires(), before);
  // A and B on disk (current and previous), nothing else.
  assert.deepEqual(readdirSync(dir.keys).sort(), [`${keyA.guid}.key`, `${keyB.guid}.key`].sort());

  // Channel disabled: key dropped from memory, nothing intercepted.
  emu.configure({ enabled: false });
  s = await again.pollOnce();
  assert.equal(s.key, undefined);
  assert.equal(s.secureChannelState, 'disabled');
  await again.stop();
});

test('key folder is 0700 and key files 0600, owned by the agent user (bit masks)', () => {
  const st = statSync(dir.keys);
  assert.equal(st.mode & 0o777, 0o700);
  assert.equal(st.uid, process.getuid!());
  const files = readdirSync(dir.keys);
  assert.ok(files.length > 0);
  for (const f of files) {
    const fst = statSync(path.join(dir.keys, f));
    assert.equal(fst.mode & 0o077, 0, `${f} must not be readable by group/other`);
    assert.equal(fst.mode & 0o777, 0o600, f);
    assert.equal(fst.uid, process.getuid!());
  }
});

test('old key files beyond current and previous are deleted after a reset', async () => {
  emu.configure({ enabled: true, modes: { imds: 'audit', wireserver: 'audit' } });
  const keeper = keeperFor(emu, dir.keys);
  const guids: string[] = [];
  for (let i = 0; i < 3; i++) {
    emu.resetKey();
    const s = await keeper.pollOnce();
    assert.equal(s.health, 'ok', s.statusMessage);
    guids.push(s.key!.guid);
  }
  assert.deepEqual(
    readdirSync(dir.keys).sort(),
    guids
      .slice(-2)
      .map((g) => `${g}.key`)
      .sort(),
  );
  await keeper.stop();
});

test('start() polls fast while the state is unknown, then publishes via onSnapshot', async () => {
  emu.setFault({ endpoint: 'wireserver', path: '/secure-channel/status', kind: 'status', status: 500, count: 3 });
  const seen: KeySnapshot[] = [];
  // Normal interval far beyond the test timeout: only fast polling can reach 'ok' after 3 failures.
  const keeper = keeperFor(emu, dir.keys, { pollIntervalMs: 600_000, onSnapshot: (s) => seen.push(s) });
  const ok = new Promise<KeySnapshot>((resolve) =>
    keeper.on('snapshot', (s: KeySnapshot) => s.health === 'ok' && resolve(s)),
  );
  keeper.start();
  const s = await ok;
  await keeper.stop();
  assert.equal(s.secureChannelState, 'WireServer Audit -  IMDS Audit - HostGA Audit');
  assert.equal(seen[0]!.health, 'degraded');
  assert.equal(keeper.current(), s);
});

test('a damaged stored key file is passed over: the keeper acquires again and writes a good one', async () => {
  emu.configure({ enabled: true, modes: { imds: 'enforce', wireserver: 'enforce' } });
  const first = keeperFor(emu, dir.keys);
  const good = await first.pollOnce();
  assert.equal(good.health, 'ok', good.statusMessage);
  await first.stop();
  const file = path.join(dir.keys, `${good.key!.guid.toLowerCase()}.key`);
  writeFileSync(file, '{"authorizationScheme":"Azure-HMAC-SHA256","gu'); // torn write
  const warnings: string[] = [];
  const before = acquires();
  const keeper = keeperFor(emu, dir.keys, { log: (level, m) => level === 'warn' && warnings.push(m) });
  const s = await keeper.pollOnce();
  await keeper.stop();
  assert.equal(s.health, 'ok', s.statusMessage);
  assert.equal(acquires(), before + 1, 'a new acquire, not a retry of the damaged file');
  assert.equal(s.key!.guid, emu.state().key!.guid);
  assert.equal(await signedImdsStatus(s), 200);
  assert.ok(
    warnings.some((w) => w.includes(file) && /not valid JSON/.test(w)),
    `the log names the damaged file: ${warnings.join(' | ')}`,
  );
  assert.doesNotThrow(() => JSON.parse(readFileSync(file, 'utf8')), 'the file was rewritten whole');
});

test('host clock follows x-ms-azure-host-date', async () => {
  emu.configure({ clockSkewMs: 3_600_000 });
  try {
    const keeper = keeperFor(emu, dir.keys);
    await keeper.pollOnce();
    assert.ok(Math.abs(keeper.clockOffsetMs() - 3_600_000) < 5000, `offset ${keeper.clockOffsetMs()}`);
    assert.ok(Math.abs(keeper.hostNow().getTime() - (Date.now() + 3_600_000)) < 5000);
  } finally {
    emu.configure({ clockSkewMs: 0 });
  }
});
