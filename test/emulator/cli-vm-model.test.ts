import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { controlRequest, type HostPort } from '../../lib/emulator/index.js';
import { createKeyKeeper, type KeySnapshot } from '../../lib/keykeeper/index.js';

const bin = new URL('../../../bin/gpa.mjs', import.meta.url).pathname;
const dir = mkdtempSync(path.join(tmpdir(), 'gpa-cli-emu-'));
let child: ChildProcess | undefined;
after(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const model = (ws: string, imds: string) =>
  JSON.stringify({
    name: 'vm1',
    properties: {
      securityProfile: { proxyAgentSettings: { enabled: true, wireServer: { mode: ws }, imds: { mode: imds } } },
    },
  });

async function pollUntil(poll: () => Promise<KeySnapshot>, ok: (s: KeySnapshot) => boolean): Promise<KeySnapshot> {
  let s = await poll();
  // Bounded: the emulator checks the file every 500 ms; 40 × 100 ms is ample without being a timing assertion.
  for (let i = 0; i < 40 && !ok(s); i++) {
    await new Promise((r) => setTimeout(r, 100));
    s = await poll();
  }
  return s;
}

test('gpa emulator --vm-model: editing the model moves the agent from Audit to Enforce without a restart', async () => {
  const file = path.join(dir, 'vm.json');
  writeFileSync(file, model('Audit', 'Audit'));
  child = spawn(process.execPath, [bin, 'emulator', '--vm-model', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  child.stderr!.on('data', (c: Buffer) => stderr.push(c.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child!.stdout! }).once('line', resolve);
    child!.once('exit', (code) => reject(new Error(`emulator exited ${code}: ${stderr.join('')}`)));
  });
  const { addresses, controlUrl } = JSON.parse(line) as { addresses: { wireserver: HostPort }; controlUrl: string };
  const keeper = createKeyKeeper({
    wireserver: addresses.wireserver,
    keyFolder: path.join(dir, 'keys'),
    requestTimeoutMs: 2000,
  });
  let s = await keeper.pollOnce();
  assert.equal(s.secureChannelState, 'WireServer Audit -  IMDS Audit - HostGA Audit', s.statusMessage);
  const keyA = s.key!.guid;

  writeFileSync(file, model('Enforce', 'Enforce'));
  s = await pollUntil(
    () => keeper.pollOnce(),
    (x) => x.modes.imds === 'enforce',
  );
  assert.deepEqual({ ...s.modes }, { imds: 'enforce', wireserver: 'enforce', hostga: 'enforce' });
  assert.equal(s.key?.guid, keyA, 'a mode change alone keeps the key');

  // A broken model is reported and changes nothing; SIGHUP reloads a fixed one.
  writeFileSync(
    file,
    '{"properties": {"securityProfile": {"proxyAgentSettings": {"enabled": true, "imds": {"mode": "Audit", "inVMAccessControlProfileReferenceId": "/x"}}}}}',
  );
  await pollUntil(
    async () => s,
    () => stderr.join('').includes('rejected'),
  );
  assert.match(
    stderr.join(''),
    /proxyAgentSettings\.imds: 'mode' and 'inVMAccessControlProfileReferenceId' cannot both be specified/,
  );
  assert.equal((await keeper.pollOnce()).modes.imds, 'enforce');
  writeFileSync(
    file,
    JSON.stringify({ enabled: true, wireServer: { mode: 'Enforce' }, imds: { mode: 'Audit' }, keyIncarnationId: 7 }),
  );
  child.kill('SIGHUP');
  s = await pollUntil(
    () => keeper.pollOnce(),
    (x) => x.modes.imds === 'audit' && x.keyIncarnationId === 7,
  );
  assert.equal(s.modes.imds, 'audit');
  assert.equal(s.keyIncarnationId, 7);
  assert.notEqual(s.key?.guid, keyA, 'a larger keyIncarnationId resets the key');
  assert.equal(
    ((await controlRequest(controlUrl, 'GET', '/state')) as { keyIncarnationId: number }).keyIncarnationId,
    7,
  );
  await keeper.stop();

  const code = await new Promise<number | null>((resolve) => {
    child!.once('exit', resolve);
    child!.kill('SIGTERM');
  });
  assert.equal(code, 0);
});

test('gpa emulator refuses a malformed --vm-model with the field named (exit 2)', async () => {
  const file = path.join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify({ enabled: true, wireServer: { inVMAccessControlProfileReferenceId: 'nope' } }));
  const p = spawn(process.execPath, [bin, 'emulator', '--vm-model', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((resolve) => p.once('exit', resolve));
  assert.equal(code, 2);
  assert.match(
    err,
    /proxyAgentSettings\.wireServer\.inVMAccessControlProfileReferenceId: "nope" is not a valid resource ID/,
  );
});
