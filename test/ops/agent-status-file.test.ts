/**
 * The agent in this process (no eBPF: "redirect": false) against the in-process host emulator:
 * status.json follows a change of the host's per-endpoint modes within a poll or two, not at the
 * next 60 s rewrite, and is not rewritten by polls that change nothing it reports.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Agent } from '../../lib/agent/index.js';
import { type Emulator, startEmulator } from '../../lib/emulator/index.js';
import type { StatusDocument } from '../../lib/status/index.js';
import { inProcessAgentConfig } from './agent-fixture.js';

const dir = mkdtempSync(path.join(tmpdir(), 'gpa-agent-status-'));
const statusFile = path.join(dir, 'log', 'status.json');
let emulator: Emulator;
let agent: Agent;
const logged: string[] = [];

const read = (): StatusDocument => JSON.parse(readFileSync(statusFile, 'utf8')) as StatusDocument;
const channel = () => read().proxyAgentStatus.keyLatchStatus.states.secureChannelState;

async function until(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline)
      throw new Error(`${what} within ${timeoutMs} ms; status.json says:\n${readFileSync(statusFile, 'utf8')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  emulator = await startEmulator({
    control: null,
    settings: { enabled: true, modes: { imds: 'audit', wireserver: 'audit' } },
  });
  const config = inProcessAgentConfig(emulator, dir, { pollKeyStatusIntervalInSeconds: 1 });
  agent = new Agent(config, (level, message) => logged.push(`${level} ${message}`));
  await agent.start();
});

after(async () => {
  await agent?.stop();
  await emulator?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('status.json shows new host modes within a few polls, not at the next 60 s rewrite', async () => {
  await until('status.json never showed the first key snapshot', () => /IMDS Audit/i.test(channel()), 15_000);
  assert.match(channel(), /WireServer Audit/i);
  emulator.configure({ modes: { imds: 'enforce', wireserver: 'enforce' } });
  await until('status.json did not show the new modes', () => /IMDS Enforce/i.test(channel()), 10_000);
  assert.match(channel(), /WireServer Enforce/i);
});

test('polls that change nothing status.json reports do not rewrite it', async () => {
  await until('the agent never became ready', () => read().proxyAgentStatus.status !== 'UNKNOWN', 15_000);
  // Let readiness settle (key ready after the poll that followed the last change).
  await new Promise((r) => setTimeout(r, 2500));
  const before = statSync(statusFile).mtimeMs;
  const seq = emulator.journal().at(-1)?.seq ?? 0;
  const polled = () => emulator.journal(seq).filter((e) => e.rawTarget === '/secure-channel/status').length;
  await until('the agent did not poll twice', () => polled() >= 2, 10_000);
  assert.equal(statSync(statusFile).mtimeMs, before);
});

test('a broken rule document shows in status.json and the log, and clears when fixed', async () => {
  const message = () => read().proxyAgentStatus.keyLatchStatus.message;
  await until('the agent never became ready', () => read().proxyAgentStatus.status !== 'UNKNOWN', 15_000);
  assert.doesNotMatch(message(), /policy:/);
  // A rule item the schema refuses, under a new rule id: nothing to keep, so WireServer fails closed.
  emulator.configure({ rules: { wireserver: { defaultAccess: 'sometimes' } } });
  await until('status.json did not name the broken rules', () => /; policy: /.test(message()), 10_000);
  assert.match(message(), /rules for wireserver are broken; denying every request under mode enforce/);
  assert.ok(
    logged.some((l) => /^error policy: error wireserver .*defaultAccess/.test(l)),
    `the log names the problem: ${logged.filter((l) => l.includes('policy')).join(' | ')}`,
  );
  emulator.configure({ rules: { wireserver: null } });
  await until('status.json still names the broken rules', () => !/policy:/.test(message()), 10_000);
  assert.ok(logged.includes('info policy: compiled without problems'));
});

test('a broken document under the same rule id keeps the last good rules, and status.json says so', async () => {
  const message = () => read().proxyAgentStatus.keyLatchStatus.message;
  const good = { id: 'ws-keep', defaultAccess: 'allow' };
  emulator.configure({ rules: { wireserver: good } });
  await until(
    'the good rules never arrived',
    () => read().proxyAgentStatus.keyLatchStatus.states.wireServerRuleId === 'ws-keep',
    10_000,
  );
  assert.doesNotMatch(message(), /policy:/);
  emulator.configure({ rules: { wireserver: { ...good, defaultAccess: 'sometimes' } } });
  await until('status.json did not say the last good rules are kept', () => /; policy: /.test(message()), 10_000);
  assert.match(message(), /rules for wireserver \(id ws-keep\) are broken; keeping the last good version/);
  emulator.configure({ rules: { wireserver: null } });
  await until('status.json still names the broken rules', () => !/policy:/.test(message()), 10_000);
});
