// The request journal is a bounded ring: the newest `journalLimit` requests, oldest first, with
// times and parsed claims produced when it is read.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Emulator, startEmulator } from '../../lib/emulator/index.js';
import { rawRequest } from './raw-http.js';

let emu: Emulator;
before(async () => {
  emu = await startEmulator({ settings: { enabled: false }, journalLimit: 3 });
});
after(async () => {
  await emu.close();
});

test('keeps the newest journalLimit requests in arrival order; since filters by sequence', async () => {
  const { host, port } = emu.addresses.imds;
  const t0 = Date.now();
  for (let i = 1; i <= 5; i++) {
    const claims: [string, string][] = i === 5 ? [['x-ms-azure-host-claims', '{"isRoot":"false"}']] : [];
    const r = await rawRequest(host, port, 'GET', `/metadata/instance?api-version=2021-02-01&n=${i}`, [
      ['Host', '169.254.169.254'],
      ['Metadata', 'true'],
      ['Connection', 'close'],
      ...claims,
    ]);
    assert.equal(r.status, 200);
  }
  const all = emu.journal();
  assert.deepEqual(
    all.map((e) => e.rawTarget.slice(-3)),
    ['n=3', 'n=4', 'n=5'],
  );
  assert.deepEqual(
    all.map((e) => e.seq),
    [3, 4, 5],
  );
  assert.deepEqual(
    emu.journal(4).map((e) => e.seq),
    [5],
  );
  assert.equal(all[0]!.claims, null);
  assert.deepEqual(all[2]!.claims, { isRoot: 'false' });
  for (const e of all) {
    const t = Date.parse(e.time);
    assert.ok(t >= t0 - 1000 && t <= Date.now() + 1000, e.time);
    assert.equal(e.status, 200);
  }
  emu.clearJournal();
  assert.deepEqual(emu.journal(), []);
});
