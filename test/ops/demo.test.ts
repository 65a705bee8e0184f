// `npm start` runs `gpa demo`: the emulator and the agent in a sealed netns on the real metadata
// addresses. These tests run the demo end to end and check that it leaves nothing behind.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { after, test } from 'node:test';
import { discoverCgroup2Root } from '../../lib/redirector/index.js';
import { ebpfGate, ebpfRequired } from '../helpers/ebpf-env.js';

const bin = new URL('../../../bin/gpa.mjs', import.meta.url).pathname;
const gate = ebpfGate();
const haveRun = existsSync(new URL('../../lib/cli/commands/run.js', import.meta.url));
const skip = gate.skip || (!haveRun && !ebpfRequired() ? "'gpa run' is not built yet" : false);
let demo: ChildProcess | null = null;

after(() => {
  if (demo && demo.exitCode === null) demo.kill('SIGKILL');
});

/** Everything a demo with this pid could have left: netns, cgroup, pins, state file. */
function leftovers(pid: number): string[] {
  const out: string[] = [];
  const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  if (ns.includes(`gpa-demo-${pid}`)) out.push(`netns gpa-demo-${pid}`);
  const root = discoverCgroup2Root();
  if (root && existsSync(`${root}/gpa-demo-${pid}`)) out.push(`cgroup gpa-demo-${pid}`);
  if (existsSync(`/sys/fs/bpf/gpa-demo-${pid}`)) out.push(`pins gpa-demo-${pid}`);
  if (existsSync('/run/gpa-demo/state.json')) out.push('/run/gpa-demo/state.json');
  if (readdirSync('/tmp').some((f) => f.startsWith(`gpa-demo-${pid}-`))) out.push(`/tmp/gpa-demo-${pid}-*`);
  return out;
}

function collect(c: ChildProcess): { text: () => string } {
  let text = '';
  c.stdout!.on('data', (d: Buffer) => (text += d));
  c.stderr!.on('data', (d: Buffer) => (text += d));
  return { text: () => text };
}

function gpaAsync(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [bin, ...args]);
    const o = collect(c);
    c.on('close', (code) => resolve({ code, out: o.text() }));
  });
}

test('gpa demo --once shows allowed, audited and denied requests, then leaves nothing behind', {
  skip,
  timeout: 120_000,
}, async () => {
  if (!haveRun) assert.fail("'gpa run' is missing: the demo cannot start the agent");
  gate.check();
  demo = spawn(process.execPath, [bin, 'demo', '--once']);
  const o = collect(demo);
  const code = await new Promise<number | null>((r) => demo!.on('exit', r));
  const out = o.text();
  assert.equal(code, 0, out);
  assert.match(out, /root\s+http:\/\/169\.254\.169\.254\/metadata\/instance\S*\s+-> HTTP 200/);
  assert.match(out, /nobody\s+http:\/\/169\.254\.169\.254\/metadata\/instance\S*\s+-> HTTP 200/);
  assert.match(out, /nobody\s+http:\/\/168\.63\.129\.16\/machine\/\?comp=goalstate\s+-> HTTP 403/);
  assert.match(out, /root\s+http:\/\/168\.63\.129\.16\/machine\/\?comp=goalstate\s+-> HTTP 200/);
  assert.match(out, /audit-deny 200\s+imds .*nobody\(65534\)/);
  assert.match(out, /gpa_requests_total\{endpoint="wireserver",decision="deny",status="403"\} 1/);
  assert.match(out, /ProxyAgent\.Connection\.log/);
  assert.deepEqual(leftovers(demo.pid!), []);
});

test('gpa exec runs commands in the live sandbox as a chosen user; Ctrl-C cleans everything up', {
  skip,
  timeout: 120_000,
}, async () => {
  if (!haveRun) assert.fail("'gpa run' is missing: the demo cannot start the agent");
  demo = spawn(process.execPath, [bin, 'demo']);
  const o = collect(demo);
  const deadline = Date.now() + 90_000;
  while (!o.text().includes('Press Ctrl-C') && demo.exitCode === null && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(o.text(), /Press Ctrl-C/, o.text());
  const imds = await gpaAsync([
    'exec',
    '--user',
    'nobody',
    '--',
    'curl',
    '-s',
    '-w',
    '\n%{http_code}',
    '-H',
    'Metadata: true',
    'http://169.254.169.254/metadata/instance?api-version=2021-02-01',
  ]);
  assert.equal(imds.code, 0, imds.out);
  assert.match(imds.out, /\n200$/);
  const ws = await gpaAsync([
    'exec',
    '--uid',
    '65534',
    '--',
    'curl',
    '-s',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    'http://168.63.129.16/machine/?comp=goalstate',
  ]);
  assert.equal(ws.out.trim(), '403');
  const rootWs = await gpaAsync([
    'exec',
    '--',
    'curl',
    '-s',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    'http://168.63.129.16/machine/?comp=goalstate',
  ]);
  assert.equal(rootWs.out.trim(), '200');
  const badUser = await gpaAsync(['exec', '--user', 'no-such-user-gpa', '--', 'true']);
  assert.equal(badUser.code, 2);
  assert.match(badUser.out, /no such user/);
  demo.kill('SIGINT');
  const code = await new Promise<number | null>((r) => demo!.on('exit', r));
  assert.equal(code, 0, o.text());
  assert.match(o.text(), /nothing left behind/);
  assert.deepEqual(leftovers(demo.pid!), []);
  const after = await gpaAsync(['exec', '--', 'true']);
  assert.equal(after.code, 2);
  assert.match(after.out, /no demo sandbox is running/);
});
