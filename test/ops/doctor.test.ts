import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkKeyFolder, checkLoopbackOnly, checkPins } from '../../lib/status/index.js';

const bin = new URL('../../../bin/gpa.mjs', import.meta.url).pathname;
const dir = mkdtempSync(path.join(tmpdir(), 'gpa-doctor-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function gpa(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [bin, ...args]);
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d));
    c.stderr.on('data', (d: Buffer) => (stderr += d));
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('doctor checks', () => {
  test('key folder: 0700 + 0600 is green; group/other bits anywhere are red with the fix', () => {
    const good = path.join(dir, 'keys-good');
    mkdirSync(good, { mode: 0o700 });
    writeFileSync(path.join(good, 'k.key'), 'x', { mode: 0o600 });
    chmodSync(good, 0o700);
    assert.equal(checkKeyFolder(good).level, process.getuid?.() === 0 ? 'green' : 'red');
    const bad = path.join(dir, 'keys-bad');
    mkdirSync(bad, { mode: 0o700 });
    chmodSync(bad, 0o750);
    writeFileSync(path.join(bad, 'k.key'), 'x', { mode: 0o644 });
    chmodSync(path.join(bad, 'k.key'), 0o644);
    const r = checkKeyFolder(bad);
    assert.equal(r.level, 'red');
    assert.match(r.message, /mode 750 \(want 700\).*k\.key is mode 644 \(want 600\).*chmod 700/);
  });

  test('listener exposure is read from /proc/net: loopback green, wildcard or public red', () => {
    const proc = path.join(dir, 'procnet');
    mkdirSync(proc);
    const hdr = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
    // 0x0C08 = 3080. 0100007F = 127.0.0.1, 00000000 = 0.0.0.0.
    writeFileSync(path.join(proc, 'tcp'), `${hdr}   0: 0100007F:0C08 00000000:0000 0A 0 0 0 0 0 0 0 0 1\n`);
    writeFileSync(path.join(proc, 'tcp6'), hdr);
    assert.equal(checkLoopbackOnly('l', 3080, true, proc).level, 'green');
    writeFileSync(path.join(proc, 'tcp'), `${hdr}   0: 00000000:0C08 00000000:0000 0A 0 0 0 0 0 0 0 0 1\n`);
    const r = checkLoopbackOnly('l', 3080, true, proc);
    assert.equal(r.level, 'red');
    assert.match(r.message, /non-loopback 0\.0\.0\.0/);
    writeFileSync(path.join(proc, 'tcp'), hdr);
    writeFileSync(
      path.join(proc, 'tcp6'),
      `${hdr}   0: 00000000000000000000000001000000:0C08 00000000000000000000000000000000:0000 0A 0 0 0 0 0 0 0 0 1\n`,
    );
    assert.equal(checkLoopbackOnly('l', 3080, true, proc).level, 'green');
    assert.equal(checkLoopbackOnly('l', 3081, true, proc).level, 'red');
  });

  test('pins without a running agent are red (clients are being refused)', () => {
    const pins = path.join(dir, 'pins');
    mkdirSync(pins);
    writeFileSync(path.join(pins, 'link_connect4'), '');
    assert.equal(checkPins(pins, false).level, 'red');
    assert.equal(checkPins(pins, true).level, 'green');
    assert.equal(checkPins(path.join(dir, 'none'), true).level, 'yellow');
  });
});

describe('gpa doctor against a fake agent', () => {
  let agent: Server;
  let metrics: Server;
  let cfgFile: string;
  let offset = 2;
  before(async () => {
    agent = createServer((req, res) => {
      if (req.url === '/provision' && req.headers.metadata === 'true')
        res.end(JSON.stringify({ finished: true, errorMessage: '' }));
      else res.writeHead(404).end();
    });
    metrics = createServer((_req, res) =>
      res.end(`# TYPE gpa_host_clock_offset_seconds gauge\ngpa_host_clock_offset_seconds ${offset}\n`),
    );
    await new Promise<void>((r) => agent.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => metrics.listen(0, '127.0.0.1', r));
    const keys = path.join(dir, 'agent-keys');
    mkdirSync(keys, { mode: 0o700 });
    chmodSync(keys, 0o700);
    cfgFile = path.join(dir, 'proxy-agent.json');
    writeFileSync(
      cfgFile,
      JSON.stringify({
        listener: { address: '127.0.0.1', port: (agent.address() as { port: number }).port },
        metrics: { address: '127.0.0.1', port: (metrics.address() as { port: number }).port },
        logFolder: dir,
        latchKeyFolder: keys,
        pinDir: path.join(dir, 'no-pins'),
      }),
    );
    writeFileSync(
      path.join(dir, 'status.json'),
      JSON.stringify({ timestamp: new Date().toISOString(), proxyAgentStatus: { status: 'SUCCESS' } }),
    );
  });
  after(async () => {
    await new Promise<void>((r) => agent.close(() => r()));
    await new Promise<void>((r) => metrics.close(() => r()));
  });

  test('--json lists every check with a level; the agent, loopback, clock and status checks are green', async () => {
    const r = await gpa('doctor', '--config', cfgFile, '--json');
    const j = JSON.parse(r.stdout) as { overall: string; checks: { check: string; level: string; message: string }[] };
    const level = (name: string) => j.checks.find((c) => c.check === name)?.level;
    assert.equal(level('config'), 'green');
    assert.equal(level('agent'), 'green');
    assert.equal(level('listener loopback-only'), 'green');
    assert.equal(level('metrics loopback-only'), 'green');
    assert.equal(level('clock skew'), 'green');
    assert.equal(level('status.json'), 'green');
    for (const c of j.checks) assert.ok(['green', 'yellow', 'red'].includes(c.level));
    assert.equal(r.status, j.overall === 'green' ? 0 : j.overall === 'yellow' ? 1 : 2);
  });

  test('a large clock skew is red and makes the exit code 2', async () => {
    offset = -900;
    const r = await gpa('doctor', '--config', cfgFile);
    assert.equal(r.status, 2);
    assert.match(r.stdout, /\[FAIL\] clock skew: local clock is 900 s off/);
    offset = 2;
  });

  test("config: the agent's own validation decides (bad value red naming the key, unknown key yellow)", async () => {
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ listener: { address: '0.0.0.0', port: 3080 }, logFolder: dir }));
    let r = await gpa('doctor', '--config', bad, '--json');
    let c = (JSON.parse(r.stdout) as { checks: { check: string; level: string; message: string }[] }).checks[0]!;
    assert.equal(c.check, 'config');
    assert.equal(c.level, 'red');
    assert.match(c.message, /listener\.address must be a loopback address \(got 0\.0\.0\.0\).*will not start/);
    assert.equal(r.status, 2);
    const unknown = path.join(dir, 'unknown.json');
    writeFileSync(unknown, JSON.stringify({ listenerPort: 3080, logFolder: dir }));
    r = await gpa('doctor', '--config', unknown, '--json');
    c = (JSON.parse(r.stdout) as { checks: { check: string; level: string; message: string }[] }).checks[0]!;
    assert.equal(c.level, 'yellow');
    assert.match(c.message, /unknown config key 'listenerPort' is ignored/);
  });

  test('agent down: red with the next step', async () => {
    const cfg = path.join(dir, 'down.json');
    writeFileSync(
      cfg,
      JSON.stringify({
        listener: { address: '127.0.0.1', port: 1 },
        metrics: { address: '127.0.0.1', port: 2 },
        logFolder: dir,
      }),
    );
    const r = await gpa('doctor', '--config', cfg);
    assert.equal(r.status, 2);
    assert.match(r.stdout, /\[FAIL\] agent: agent not answering.*systemctl status/);
  });
});
