import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type Emulator, startEmulator } from '../../lib/emulator/index.js';
import type { KeyKeeper } from '../../lib/keykeeper/index.js';
import { keeperFor, scratch } from './helpers.js';

let emu: Emulator;
let keeper: KeyKeeper;
const dir = scratch();
before(async () => {
  emu = await startEmulator({
    control: null,
    settings: { enabled: true, modes: { imds: 'audit', wireserver: 'enforce' } },
  });
  keeper = keeperFor(emu, dir.keys, { maxResponseBytes: 1024 * 1024 });
  const s = await keeper.pollOnce();
  assert.equal(s.health, 'ok', s.statusMessage);
});
after(async () => {
  await keeper.stop();
  await emu.close();
  dir.cleanup();
});

const good = () => JSON.parse(JSON.stringify(emu.state().status)) as Record<string, unknown>;
const withField = (k: string, v: unknown) => JSON.stringify({ ...good(), [k]: v });

const cases: { name: string; body: () => string; contentType?: string; message: RegExp }[] = [
  { name: 'invalid JSON', body: () => '{"version": "2.0",', message: /not valid JSON/ },
  { name: 'not an object', body: () => '[]', message: /must be a JSON object/ },
  { name: 'missing fields', body: () => '{}', message: /authorizationScheme must be/ },
  { name: 'missing version', body: () => withField('version', undefined), message: /version must be/ },
  { name: 'unknown v1 state', body: () => withField('version', '1.0'), message: /v1 secureChannelState must be/ },
  {
    name: 'v1 state of a wrong value',
    body: () => JSON.stringify({ ...good(), version: '1.0', secureChannelState: 'Sometimes' }),
    message: /secureChannelState/,
  },
  {
    name: 'huge body',
    body: () => JSON.stringify({ ...good(), pad: 'x'.repeat(3 * 1024 * 1024) }),
    message: /response over/,
  },
  {
    name: 'wrong type: enabled',
    body: () => withField('secureChannelEnabled', 'yes'),
    message: /secureChannelEnabled must be true or false/,
  },
  { name: 'wrong type: incarnation', body: () => withField('keyIncarnationId', '2'), message: /keyIncarnationId/ },
  { name: 'wrong type: rules', body: () => withField('authorizationRules', []), message: /authorizationRules must be/ },
  {
    name: 'wrong type: rule mode',
    body: () => withField('authorizationRules', { imds: { mode: 7 } }),
    message: /authorizationRules\.imds\.mode/,
  },
  {
    name: 'GUID with path characters',
    body: () => withField('keyGuid', '../../../../etc/cron.d/x'),
    message: /keyGuid .* is not a GUID/,
  },
  { name: 'vTPM delivery', body: () => withField('keyDeliveryMethod', 'vtpm'), message: /vtpm.*not supported/ },
  {
    name: 'duplicate key (a second mode would win under JSON.parse)',
    body: () => `${JSON.stringify(good()).slice(0, -1)},"secureChannelEnabled":false}`,
    message: /duplicate/,
  },
  { name: 'XML', body: () => '<SecureChannel/>', contentType: 'text/xml', message: /XML.*not supported/ },
];

for (const c of cases) {
  test(`hostile status (${c.name}) is rejected with a clear message and changes nothing`, async () => {
    const before = keeper.current();
    const filesBefore = readdirSync(dir.keys).sort();
    emu.setFault({
      endpoint: 'wireserver',
      path: '/secure-channel/status',
      kind: 'body',
      body: c.body(),
      ...(c.contentType ? { contentType: c.contentType } : {}),
      count: 1,
    });
    const s = await keeper.pollOnce();
    assert.equal(s.health, 'degraded');
    assert.match(s.statusMessage, c.message);
    assert.equal(s.key?.guid, before.key?.guid);
    assert.deepEqual(s.key?.bytes, before.key?.bytes);
    assert.deepEqual(s.modes, before.modes);
    assert.deepEqual(s.rules, before.rules);
    assert.deepEqual(s.ruleIds, before.ruleIds);
    assert.equal(s.secureChannelState, before.secureChannelState);
    assert.deepEqual(readdirSync(dir.keys).sort(), filesBefore);
    assert.equal(existsSync(path.join(dir.root, 'etc')), false);
    const recovered = await keeper.pollOnce();
    assert.equal(recovered.health, 'ok');
  });
}

test('a hostile acquire response (GUID with path characters) is refused; nothing written', async () => {
  emu.resetKey();
  const filesBefore = readdirSync(dir.keys).sort();
  const held = keeper.current().key?.guid;
  emu.setFault({
    endpoint: 'wireserver',
    path: '/secure-channel/key',
    method: 'POST',
    kind: 'body',
    body: JSON.stringify({
      authorizationScheme: 'Azure-HMAC-SHA256',
      incarnationId: 9,
      guid: '../evil',
      key: 'ab'.repeat(32),
    }),
    count: 1,
  });
  const s = await keeper.pollOnce();
  assert.equal(s.health, 'degraded');
  assert.match(s.statusMessage, /guid is not a GUID/);
  assert.equal(s.key?.guid, held);
  assert.deepEqual(readdirSync(dir.keys).sort(), filesBefore);
  const ok = await keeper.pollOnce();
  assert.equal(ok.health, 'ok');
  assert.equal(ok.key?.guid, emu.state().key?.guid);
});
