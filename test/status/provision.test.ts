import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { answerProvision, ProvisioningTracker, provisionExitCode, queryProvision } from '../../lib/status/index.js';

const bin = new URL('../../../bin/gpa.mjs', import.meta.url).pathname;

describe('provisioning tracker and /provision answer', () => {
  test('finished only when redirector, key and listener are all ready; the error names what is missing', () => {
    let t = 1000n;
    const p = new ProvisioningTracker({ now: () => t });
    p.setSecureChannelState('wireserver');
    p.markReady('redirector');
    p.markReady('listener');
    let s = p.snapshot();
    assert.equal(s.finishedAtNs, 0n);
    assert.match(s.errorMessage, /^keyLatchStatus - /);
    assert.doesNotMatch(s.errorMessage, /ebpfProgramStatus|proxyListenerStatus/);
    const headers = { metadata: 'true' };
    assert.deepEqual(JSON.parse(answerProvision(s, headers).body), { finished: false, errorMessage: s.errorMessage });
    t = 2000n;
    p.markReady('key');
    s = p.snapshot();
    assert.equal(s.finishedAtNs, 2000n);
    assert.deepEqual(JSON.parse(answerProvision(s, headers).body), { finished: true, errorMessage: '' });
  });

  test('Metadata header is required', () => {
    const p = new ProvisioningTracker();
    assert.equal(answerProvision(p.snapshot(), {}).statusCode, 400);
    assert.equal(answerProvision(p.snapshot(), { Metadata: 'false' }).statusCode, 400);
    assert.equal(answerProvision(p.snapshot(), [['Metadata', 'True']]).statusCode, 200);
  });

  test('time tick: with the channel disabled, only a finish at or after the query counts; notify asks for a poll', () => {
    let t = 100n;
    const p = new ProvisioningTracker({ now: () => t });
    p.setSecureChannelState('disabled');
    for (const c of ['redirector', 'key', 'listener'] as const) p.markReady(c);
    const q = { Metadata: 'true', 'x-ms-azure-time-tick': '150', 'x-ms-azure-notify': 'true' };
    let a = answerProvision(p.snapshot(), q);
    assert.equal(JSON.parse(a.body).finished, false);
    assert.equal(a.notifyKeyKeeper, true);
    t = 200n;
    p.markReady('key'); // the key keeper's next successful poll refreshes the finish time
    a = answerProvision(p.snapshot(), q);
    assert.equal(JSON.parse(a.body).finished, true);
    assert.equal(a.notifyKeyKeeper, false);
    // Latched channel: an older finish counts.
    p.setSecureChannelState('wireserverandimds');
    assert.equal(
      JSON.parse(answerProvision(p.snapshot(), { ...q, 'x-ms-azure-time-tick': '999' }).body).finished,
      true,
    );
  });

  test('key dropped: back to not finished; time-up: finished with the reasons', () => {
    let t = 10n;
    const p = new ProvisioningTracker({ now: () => t });
    p.setSecureChannelState('wireserver');
    for (const c of ['redirector', 'key', 'listener'] as const) p.markReady(c);
    p.markNotReady('key', 'the host withholds the key; check the VM model keyIncarnationId');
    assert.equal(p.snapshot().finishedAtNs, 0n);
    t = 20n;
    p.timeUp();
    const body = JSON.parse(answerProvision(p.snapshot(), { Metadata: 'true' }).body) as {
      finished: boolean;
      errorMessage: string;
    };
    assert.equal(body.finished, true);
    assert.match(body.errorMessage, /keyLatchStatus - the host withholds the key/);
    assert.equal(provisionExitCode(body), 2);
  });

  test('after time-up, a query that starts later is told finished with the reasons too, until all is ready', () => {
    let t = 10n;
    const p = new ProvisioningTracker({ now: () => t });
    p.markReady('redirector');
    p.markReady('listener');
    t = 20n;
    p.timeUp();
    // cloud-init's `--status --wait 120` started after the agent gave up: its tick is later.
    const later = { Metadata: 'true', 'x-ms-azure-time-tick': '30' };
    const answer = () =>
      JSON.parse(answerProvision(p.snapshot(), later).body) as { finished: boolean; errorMessage: string };
    assert.equal(answer().finished, true);
    assert.equal(provisionExitCode(answer()), 2);
    // A poll that fails again changes the message, not the verdict.
    p.markNotReady('key', 'no answer from the WireServer (ECONNREFUSED)');
    assert.equal(answer().finished, true);
    assert.match(answer().errorMessage, /ECONNREFUSED/);
    // Ready at last: finished only for queries that started before it, as usual.
    t = 25n;
    p.markReady('key');
    assert.equal(answer().finished, false);
    t = 40n;
    p.markReady('key');
    assert.deepEqual(answer(), { finished: true, errorMessage: '' });
  });

  test('a time tick that is not a number is ignored, never thrown on', () => {
    const p = new ProvisioningTracker();
    assert.equal(
      answerProvision(p.snapshot(), { Metadata: 'true', 'x-ms-azure-time-tick': '-1; DROP' }).statusCode,
      200,
    );
  });
});

describe('gpa --status against a live /provision endpoint', () => {
  let server: Server;
  let port = 0;
  const t = 0n;
  const tracker = new ProvisioningTracker({ now: () => BigInt(Date.now()) * 1_000_000n + t });
  const notifications: number[] = [];

  before(async () => {
    server = createServer((req, res) => {
      if (req.url !== '/provision') return res.writeHead(404).end();
      const a = answerProvision(tracker.snapshot(), req.headers);
      if (a.notifyKeyKeeper) notifications.push(Date.now());
      res.writeHead(a.statusCode, { 'content-type': 'application/json', connection: 'close' }).end(a.body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  // Async on purpose: the /provision server runs in this process, so a blocking spawnSync would starve it.
  const status = (...args: string[]) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [
        bin,
        '--status',
        '--port',
        String(port),
        '--config',
        '/nonexistent/gpa.json',
        ...args,
      ]);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ status: code, stdout, stderr }));
    });

  test('not finished: exit 1, and the first query asks the agent to poll now', async () => {
    tracker.setSecureChannelState('wireserver');
    tracker.markReady('redirector');
    tracker.markReady('listener');
    const r = await status();
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /not finished[\s\S]*keyLatchStatus/);
    assert.equal(notifications.length, 1);
  });

  test('--wait N: not ready within the wait exits 1; becoming ready during the wait exits 0', async () => {
    const r1 = await status('--wait', '1');
    assert.equal(r1.status, 1);
    // Grant the key while a waiting query is running.
    const child = spawn(
      process.execPath,
      [bin, '--status', '--wait', '20', '--port', String(port), '--config', '/nonexistent/gpa.json'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => setTimeout(r, 700));
    tracker.markReady('key');
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    assert.equal(code, 0, out);
    assert.match(out, /provisioning finished/);
  });

  test('finished with an error exits 2 and prints the reasons', async () => {
    tracker.markNotReady('redirector', 'eBPF programs failed to attach');
    tracker.timeUp();
    const r = await status('--json');
    assert.equal(r.status, 2);
    const j = JSON.parse(r.stdout) as { finished: boolean; errorMessage: string; exitCode: number };
    assert.equal(j.finished, true);
    assert.match(j.errorMessage, /ebpfProgramStatus - eBPF programs failed to attach/);
  });

  test('agent not running: exit 1 with a hint', async () => {
    const r = spawnSync(process.execPath, [bin, '--status', '--port', '1', '--config', '/nonexistent/gpa.json'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 1);
    assert.match(r.stdout, /did not answer[\s\S]*gpa doctor/);
    const direct = await queryProvision({ port: 1, waitSeconds: 0 });
    assert.equal(direct.reachable, false);
  });

  test('bad arguments exit 1 with a message', async () => {
    const r = await status('--wait', 'soon');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--wait takes a number of seconds/);
  });
});
