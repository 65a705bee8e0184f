// Scenario 23: with pinned links, SIGKILL of the agent never lets an unsigned request reach an
// Enforce endpoint (clients get connection errors during the gap), and each restart ends with exactly
// one set of programs attached.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type Emulator, startEmulator } from '../../lib/emulator/index.js';
import { checkBpfAttached, queryProvision } from '../../lib/status/index.js';
import { createTestCgroup, type TestCgroup } from '../helpers/cgroup.js';
import { ebpfGate, ebpfRequired } from '../helpers/ebpf-env.js';

const bin = new URL('../../../bin/gpa.mjs', import.meta.url).pathname;
const clientJs = new URL('./fixtures/loop-client.js', import.meta.url).pathname;
const runCommand = new URL('../../lib/cli/commands/run.js', import.meta.url).pathname;
const gate = ebpfGate();
const haveRun = existsSync(runCommand);
const skip = gate.skip || (!haveRun && !ebpfRequired() ? "'gpa run' is not built yet" : false);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

let emu: Emulator;
let cg: TestCgroup;
let dir: string;
let pinDir: string;
let config: string;
let listenerPort: number;
let agent: ChildProcess | null = null;
const recoveries: number[] = [];

function startAgent(): ChildProcess {
  const c = spawn(process.execPath, [bin, 'run', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  c.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  c.on('exit', (code, sig) => {
    if (code && code !== 0) process.stderr.write(`agent exited ${code} ${sig ?? ''}: ${err}\n`);
  });
  return c;
}

async function untilReady(): Promise<number> {
  const t0 = Date.now();
  const r = await queryProvision({ port: listenerPort, waitSeconds: 30, pollMs: 50 });
  assert.ok(r.finished && r.errorMessage === '', `agent not ready: ${JSON.stringify(r)}`);
  return Date.now() - t0;
}

before(async () => {
  if (skip) return;
  if (!haveRun) assert.fail("'gpa run' (lib/cli/commands/run.ts) is missing: the crash-safety scenario cannot run");
  gate.check();
  emu = await startEmulator({
    control: null,
    settings: { enabled: true, modes: { imds: 'enforce', wireserver: 'enforce' } },
  });
  cg = createTestCgroup('crash');
  dir = mkdtempSync(path.join(tmpdir(), 'gpa-crash-'));
  pinDir = `/sys/fs/bpf/gpa-test-${process.pid}-crash`;
  listenerPort = await freePort();
  config = path.join(dir, 'proxy-agent.json');
  writeFileSync(
    config,
    JSON.stringify({
      cgroupPath: cg.path,
      pinDir,
      logFolder: path.join(dir, 'log'),
      latchKeyFolder: path.join(dir, 'keys'),
      endpoints: {
        imds: { address: emu.addresses.imds.host, port: emu.addresses.imds.port },
        wireserver: { address: emu.addresses.wireserver.host, port: emu.addresses.wireserver.port },
        hostga: { address: emu.addresses.hostga.host, port: emu.addresses.hostga.port },
      },
      listener: { address: '127.0.0.1', port: listenerPort },
      metrics: { address: '127.0.0.1', port: await freePort() },
      workers: 1,
    }),
  );
});

after(async () => {
  if (agent && agent.exitCode === null) agent.kill('SIGKILL');
  if (pinDir) rmSync(pinDir, { recursive: true, force: true });
  await cg?.cleanup();
  await emu?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('scenario 23: SIGKILL of the agent never lets an unsigned request through; restarts leave one set of programs', {
  skip,
}, async () => {
  agent = startAgent();
  await untilReady();
  const stopFile = path.join(dir, 'stop');
  const targets = [
    { host: emu.addresses.imds.host, port: emu.addresses.imds.port, path: '/metadata/instance?api-version=2021-02-01' },
    { host: emu.addresses.wireserver.host, port: emu.addresses.wireserver.port, path: '/machine/?comp=goalstate' },
  ];
  const client = cg.run(process.execPath, [clientJs, JSON.stringify(targets), stopFile, '60000', '20000'], {
    timeoutMs: 90_000,
  });
  await new Promise((r) => setTimeout(r, 500));
  for (let i = 0; i < 3; i++) {
    agent.kill('SIGKILL');
    await new Promise((r) => agent!.once('exit', r));
    // The gap: pinned links still redirect, nothing listens; clients must get errors, not pass-through.
    await new Promise((r) => setTimeout(r, 400));
    const t0 = Date.now();
    agent = startAgent();
    await untilReady();
    recoveries.push(Date.now() - t0);
    const bpf = await checkBpfAttached(cg.path, 3000);
    assert.equal(bpf[0]!.level, 'green', `after restart ${i + 1}: ${bpf[0]!.message}`);
    await new Promise((r) => setTimeout(r, 400));
  }
  writeFileSync(stopFile, '');
  const res = await client;
  const summary = JSON.parse(res.stdout.trim().split('\n').pop() ?? '{}') as {
    n: number;
    counts: Record<string, number>;
  };
  process.stdout.write(`# client: ${JSON.stringify(summary)}; recovery ms: ${recoveries.join(', ')}\n`);
  assert.ok((summary.counts['status:200'] ?? 0) > 0, 'requests succeeded while the agent was up');
  // 503 is the agent itself answering before its first policy/key snapshot reached the worker (an
  // agent-generated refusal, never forwarded); any other status would mean a wrong decision.
  const bad = Object.keys(summary.counts).filter(
    (k) => k.startsWith('status:') && k !== 'status:200' && k !== 'status:503',
  );
  assert.deepEqual(bad, [], `unexpected statuses: ${JSON.stringify(summary.counts)}`);

  // The invariant: everything the host saw on an Enforce endpoint was signed (the secure-channel
  // handshake itself is the only unsigned traffic, and it is not a client request).
  const unsigned = emu
    .journal()
    .filter((e) => !e.rawTarget.startsWith('/secure-channel/') || e.rawTarget.endsWith('/key-attestation'))
    .filter((e) => e.signature !== 'valid' && e.signature !== 'exempt');
  assert.deepEqual(
    unsigned.map((e) => `${e.endpoint} ${e.method} ${e.rawTarget} ${e.signature}`),
    [],
  );
});

test('scenario 23: a restart while the host fails its first polls keeps the pinned redirects and forwards nothing', {
  skip,
}, async () => {
  assert.ok(agent !== null && agent.exitCode === null, 'the agent of the previous test is running');
  agent.kill('SIGKILL');
  await new Promise((r) => agent!.once('exit', r));
  const fault = emu.setFault({ endpoint: 'wireserver', path: '/secure-channel/status', kind: 'status', status: 503 });
  const seen = emu.journal().length;
  const polls = () =>
    emu
      .journal()
      .slice(seen)
      .filter((e) => e.rawTarget === '/secure-channel/status').length;
  agent = startAgent();
  // The keeper polls every second until its first good answer: wait for three failed polls, and
  // past the workers' first-snapshot hold (5 s), so what clients get now is the agent's answer.
  const t0 = Date.now();
  while (polls() < 3 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 100));
  assert.ok(polls() >= 3, `the agent polled ${polls()} times`);
  await new Promise((r) => setTimeout(r, Math.max(0, 5500 - (Date.now() - t0))));
  const imds = {
    host: emu.addresses.imds.host,
    port: emu.addresses.imds.port,
    path: '/metadata/instance?api-version=2021-02-01',
  };
  const ws = {
    host: emu.addresses.wireserver.host,
    port: emu.addresses.wireserver.port,
    path: '/machine/?comp=goalstate',
  };
  const res = await cg.run(
    process.execPath,
    [clientJs, JSON.stringify([imds, ws]), path.join(dir, 'none'), '10000', '4'],
    {
      timeoutMs: 30_000,
    },
  );
  const counts = (JSON.parse(res.stdout.trim().split('\n').pop() ?? '{}') as { counts: Record<string, number> }).counts;
  // The pinned redirects stayed (nothing reached the host) and the agent refused (503 no_policy).
  assert.deepEqual(counts, { 'status:503': 4 }, `client outcomes while the host fails: ${JSON.stringify(counts)}`);
  const forwarded = emu
    .journal()
    .slice(seen)
    .filter((e) => !e.rawTarget.startsWith('/secure-channel/'));
  assert.deepEqual(
    forwarded.map((e) => `${e.endpoint} ${e.method} ${e.rawTarget} ${e.signature}`),
    [],
  );
  // The host recovers: the next poll latches the key again and requests flow, signed.
  emu.clearFaults(fault);
  await untilReady();
  const ok = await cg.run(process.execPath, [clientJs, JSON.stringify([imds]), path.join(dir, 'none'), '10000', '2'], {
    timeoutMs: 30_000,
  });
  const okCounts = (JSON.parse(ok.stdout.trim().split('\n').pop() ?? '{}') as { counts: Record<string, number> })
    .counts;
  assert.deepEqual(okCounts, { 'status:200': 2 });
  assert.ok(
    emu
      .journal()
      .slice(seen)
      .filter((e) => e.rawTarget.startsWith('/metadata/'))
      .every((e) => e.signature === 'valid'),
  );
});
