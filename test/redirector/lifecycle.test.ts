// Failure reporting and the helpers the data plane uses: a wrong cgroup path and a verifier
// rejection come back as `failed` status with the details; SO_REUSEPORT listeners; NSS lookups.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import * as redirector from '../../lib/redirector/index.js';
import { createTestCgroup, type TestCgroup } from '../helpers/cgroup.js';
import { ebpfGate } from '../helpers/ebpf-env.js';
import { repoRoot } from './harness.js';

const gate = ebpfGate();

describe('redirector lifecycle and helpers', { skip: gate.skip }, () => {
  let cg: TestCgroup;
  let tmp: string;

  before(() => {
    gate.check();
    cg = createTestCgroup('life');
    tmp = mkdtempSync(path.join(os.tmpdir(), 'gpa-redirector-'));
  });

  after(async () => {
    redirector.stop();
    rmSync(tmp, { recursive: true, force: true });
    await cg?.cleanup();
  });

  test('a wrong cgroup path is reported as failed, naming the path', () => {
    const st = redirector.start({ cgroupPath: '/tmp/not-a-cgroup' });
    assert.equal(st.state, 'failed');
    assert.match(st.lastError?.message ?? '', /\/tmp\/not-a-cgroup/);
    assert.equal(redirector.status().state, 'failed');
  });

  test('a verifier rejection is reported as failed with the verifier log', () => {
    const obj = path.join(tmp, 'broken.bpf.o');
    const triple = spawnSync('gcc', ['-dumpmachine'], { encoding: 'utf8' }).stdout.trim();
    const cc = spawnSync('clang', [
      ...['-O2', '-g', '-target', 'bpf', `-I/usr/include/${triple}`, '-DGPA_TEST_BREAK_VERIFIER'],
      ...['-c', path.join(repoRoot, 'native', 'bpf', 'redirect.bpf.c'), '-o', obj],
    ]);
    assert.equal(cc.status, 0, String(cc.stderr));
    const st = redirector.start({ cgroupPath: cg.path, objectPath: obj });
    assert.equal(st.state, 'failed');
    assert.equal(st.lastError?.op, 'load');
    assert.match(st.lastError?.verifierLog ?? '', /invalid mem access|R\d/);
    assert.deepEqual(st.programs, []);
  });

  test('start twice in one process is refused; stop then start works', () => {
    assert.equal(redirector.start({ cgroupPath: cg.path }).state, 'running');
    assert.throws(() => redirector.start({ cgroupPath: cg.path }), /already running/);
    redirector.stop();
    assert.equal(redirector.status().state, 'stopped');
    assert.throws(() => redirector.listRules(), /not running/);
  });

  test('loads under a sampling profiler (SIGPROF every 0.5 ms: the verifier would give up with EAGAIN)', () => {
    // node --prof interrupts the thread that loads the programs all the time; the addon blocks
    // signals around the load. Run in a child process so the profiler stays out of this one.
    const mod = pathToFileURL(path.join(repoRoot, 'dist', 'lib', 'redirector', 'index.js')).href;
    const script = `import(${JSON.stringify(mod)}).then((r) => {
      const st = r.start({ cgroupPath: ${JSON.stringify(cg.path)}, connMapSize: 256 });
      r.stop();
      process.stdout.write(JSON.stringify({ state: st.state, error: st.lastError?.message ?? null }));
    });`;
    const run = spawnSync(
      process.execPath,
      ['--prof', '--prof-sampling-interval=500', '--input-type=module', '-e', script],
      {
        cwd: tmp, // the tick log lands here and is removed with it
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { state: 'running', error: null });
  });

  test('createReusePortListener gives fds two servers can listen on at once', async () => {
    const fd1 = redirector.createReusePortListener('127.0.0.1', 0);
    const port = await new Promise<number>((resolve) => {
      const s1 = net.createServer().listen({ fd: fd1 }, () => resolve((s1.address() as net.AddressInfo).port));
      servers.push(s1);
    });
    const fd2 = redirector.createReusePortListener('127.0.0.1', port);
    const s2 = net.createServer().listen({ fd: fd2 });
    servers.push(s2);
    await new Promise((resolve) => s2.once('listening', resolve));
    assert.equal((s2.address() as net.AddressInfo).port, port);
    for (const s of servers) s.close();
    assert.throws(() => redirector.createReusePortListener('localhost', 1), /IPv4 or IPv6 literal/);
  });
  const servers: net.Server[] = [];

  test('userInfo and groupName resolve through NSS', () => {
    const root = redirector.userInfo(0);
    assert.equal(root?.name, 'root');
    assert.deepEqual(root?.groups[0], { gid: 0, name: 'root' });
    assert.equal(redirector.groupName(0), 'root');
    assert.equal(redirector.userInfo(4_000_000_000), null);
  });
});
