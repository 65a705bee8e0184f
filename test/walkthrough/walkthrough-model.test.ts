/**
 * The examples of docs/walkthrough.md without eBPF: each VM model the page writes, its profile, the
 * learn → simulate round trip, the models the host rejects (with the messages the page quotes) and
 * the keyIncarnationId rule. The JSON comes from the page itself, so the page cannot drift.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type Emulator, startEmulator } from '../../lib/emulator/index.js';
import { createKeyKeeper, type KeyKeeper } from '../../lib/keykeeper/index.js';
import { compilePolicy } from '../../lib/policy/index.js';
import { auditRecord } from '../ops/audit-fixture.js';
import { readDocBlocks, repoRoot } from './doc-blocks.js';

const CLI = path.join(repoRoot, 'bin', 'gpa.mjs');
const blocks = readDocBlocks();
const vmModels = blocks.filter((b) => b.kind === 'file' && b.arg === 'vm.json').map((b) => JSON.parse(b.text));
const profileBlock = blocks.find((b) => b.kind === 'expect-file')!;
const profile = JSON.parse(profileBlock.text) as { properties: { rules: unknown } };
const PROFILE_REF =
  '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1/providers/Microsoft.Compute/galleries/walkthrough/inVMAccessControlProfiles/imds-readers/versions/1.0.0';

const work = mkdtempSync(path.join(tmpdir(), 'gpa-wt-model-'));
let emu: Emulator;
let keeper: KeyKeeper;
before(async () => {
  const file = path.join(work, profileBlock.arg!);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, profileBlock.text);
  emu = await startEmulator({ control: null, profilesDir: path.join(work, 'profiles') });
  keeper = createKeyKeeper({ wireserver: emu.addresses.wireserver, keyFolder: path.join(work, 'keys') });
});
after(async () => {
  await keeper?.stop();
  await emu?.close();
  rmSync(work, { recursive: true, force: true });
});

function runCli(args: string[], cwd = work): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => {
      stdout += d;
    });
    p.stderr.on('data', (d) => {
      stderr += d;
    });
    p.once('error', reject);
    p.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('the page writes vm.json five times: Audit, Enforce, linked profile, key reset, ignored incarnation', async () => {
  assert.equal(vmModels.length, 5);
  const r1 = emu.applyVmModel(vmModels[0]);
  let s = await keeper.pollOnce();
  assert.deepEqual(r1.modes, { imds: 'audit', wireserver: 'audit' });
  assert.equal(s.secureChannelState, 'WireServer Audit -  IMDS Audit - HostGA Audit', s.statusMessage);
  const firstKey = s.key!.guid;

  emu.applyVmModel(vmModels[1]);
  s = await keeper.pollOnce();
  assert.equal(s.secureChannelState, 'WireServer Enforce -  IMDS Enforce - HostGA Enforce');
  assert.equal(s.key!.guid, firstKey, 'a mode change keeps the key');

  emu.applyVmModel(vmModels[2]);
  s = await keeper.pollOnce();
  assert.deepEqual({ ...s.modes }, { imds: 'enforce', wireserver: 'enforce', hostga: 'enforce' });
  assert.equal(s.ruleIds.imds, PROFILE_REF, 'the host sends the reference ID as the rule id');
  const item = JSON.parse(JSON.stringify(s.rules.imds)) as { defaultAccess: string; rules: unknown };
  assert.equal(item.defaultAccess, 'deny');
  assert.deepEqual(item.rules, profile.properties.rules, 'the host sends the profile document as the rules');
  const compiled = compilePolicy({ modes: s.modes, rules: s.rules, ruleIds: s.ruleIds });
  assert.deepEqual(compiled.problems, [], 'the agent accepts the profile as valid rules');

  const reset = emu.applyVmModel(vmModels[3]);
  assert.equal(reset.keyReset, true, '2 > 1 resets the key');
  s = await keeper.pollOnce();
  assert.equal(s.keyIncarnationId, 2);
  assert.notEqual(s.key!.guid, firstKey, 'the agent re-acquires a new key');
  const secondKey = s.key!.guid;

  const ignored = emu.applyVmModel(vmModels[4]);
  assert.equal(ignored.keyReset, false);
  const note = blocks.find((b) => b.kind === 'emulator-log')!.text.replace(/^gpa emulator: /, '');
  assert.ok(ignored.notes.includes(note), `notes ${JSON.stringify(ignored.notes)} include the page's line`);
  s = await keeper.pollOnce();
  assert.equal(s.key!.guid, secondKey, 'a smaller keyIncarnationId changes nothing');
});

test('keyIncarnationId: equal is ignored, larger resets (and only then)', async () => {
  const base = vmModels[3].properties.securityProfile.proxyAgentSettings;
  const current = emu.state().keyIncarnationId;
  const equal = emu.applyVmModel({ ...base, keyIncarnationId: current });
  assert.equal(equal.keyReset, false);
  assert.match(equal.notes.join('\n'), new RegExp(`keyIncarnationId ${current} ignored`));
  assert.equal(emu.state().keyIncarnationId, current);
  const larger = emu.applyVmModel({ ...base, keyIncarnationId: current + 5 });
  assert.equal(larger.keyReset, true);
  assert.equal(emu.state().keyIncarnationId, current + 5);
});

test('each model the page says the host rejects: gpa emulator exits 2 naming the field; a running host keeps its model', async () => {
  const rejected = blocks.filter((b) => b.kind === 'rejected');
  const messages = blocks.filter((b) => b.kind === 'message');
  assert.equal(rejected.length, 4);
  assert.equal(messages.length, rejected.length);
  const before = JSON.stringify(emu.state().status);
  for (const [i, b] of rejected.entries()) {
    const message = messages[i]!.text.trim();
    const file = path.join(work, `rejected-${i}.json`);
    writeFileSync(file, b.text);
    const r = await runCli(['emulator', '--vm-model', file, '--profiles', 'profiles']);
    assert.equal(r.code, 2, `docs/walkthrough.md:${b.line}: ${r.stderr}`);
    assert.ok(r.stderr.includes(message), `docs/walkthrough.md:${b.line}:\n  want ${message}\n  got  ${r.stderr}`);
    assert.throws(() => emu.applyVmModel(JSON.parse(b.text)), { message: new RegExp(`^${regexQuote(message)}`) });
    assert.equal(JSON.stringify(emu.state().status), before, 'a rejected model changes nothing');
  }
});

function regexQuote(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

test("learn → simulate: the Audit requests of the page learn exactly the page's profile, and simulate confirms it", async () => {
  const root = { uid: 0, userName: 'root', exePath: '/usr/bin/curl' };
  const nobody = { uid: 65534, userName: 'nobody', exePath: '/usr/bin/curl' };
  const instance = '/metadata/instance?api-version=2021-02-01';
  const records = [
    auditRecord('imds', instance, root, 'allow'),
    auditRecord('imds', instance, nobody, 'allow'),
    auditRecord('wireserver', '/machine/?comp=goalstate', root, 'allow'),
    auditRecord('wireserver', '/machine/?comp=goalstate', nobody, 'deny'),
  ];
  const log = path.join(work, 'log');
  mkdirSync(log, { recursive: true });
  writeFileSync(path.join(log, 'ProxyAgent.Connection.log'), `${records.map((r) => JSON.stringify(r)).join('\n')}\n`);

  const learned = await runCli(['learn', '--log', log, '--out', 'learned-all.json']);
  assert.equal(learned.code, 0, learned.stderr);
  const all = JSON.parse(readFileSync(path.join(work, 'learned-all.json'), 'utf8'));
  assert.deepEqual(all.imds.rules, profile.properties.rules, 'the page shows what learn writes');
  assert.deepEqual(
    all.wireserver.rules.identities.map((i: { userName: string }) => i.userName),
    ['root'],
    'the denied request of nobody is not learned',
  );
  const check = await runCli(['policy', 'check', 'learned-all.json']);
  assert.equal(check.code, 0, check.stdout + check.stderr);

  const sim = (url: string, user: string, exe: string) =>
    runCli([
      'policy',
      'simulate',
      '--rules',
      'learned-all.json',
      '--endpoint',
      'imds',
      '--method',
      'GET',
      '--url',
      url,
      '--user',
      user,
      '--exe',
      exe,
    ]);
  for (const who of ['root', 'nobody']) {
    const r = await sim(instance, who, '/usr/bin/curl');
    assert.equal(r.code, 0, `${who} was observed, so is allowed: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /^allow rule_allow/);
  }
  const refused: [string, string, string, RegExp][] = [
    [instance, 'nobody', '/usr/bin/python3', /^deny no_identity_match/],
    [instance, 'daemon', '/usr/bin/curl', /^deny no_identity_match/],
    ['/metadata/instance?api-version=2019-02-01', 'root', '/usr/bin/curl', /^deny default_deny/],
    [
      '/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x',
      'root',
      '/usr/bin/curl',
      /^deny default_deny/,
    ],
  ];
  for (const [url, user, exe, want] of refused) {
    const r = await sim(url, user, exe);
    assert.equal(r.code, 1, `${user} ${exe} ${url} was never observed: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout, want);
  }
});
