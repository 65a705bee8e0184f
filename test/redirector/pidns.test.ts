// The agent in a pid namespace: its kernel tgid is not the pid it sees, so it is exempted by its own
// cgroup id. Under the attach point (own child cgroup) that works, and the self-test still proves a
// client is redirected and attributed; in the attach cgroup itself it would exempt every client, so
// start() refuses with a message naming the cgroup. Real eBPF, child cgroups, cleaned up in after().
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTestCgroup, type TestCgroup } from '../helpers/cgroup.js';
import { ebpfGate } from '../helpers/ebpf-env.js';
import { repoRoot } from './harness.js';

const gate = ebpfGate();
const FIXTURE = path.join(repoRoot, 'test', 'redirector', 'fixtures', 'pidns-agent.mjs');
const INDEX = path.join(repoRoot, 'dist', 'lib', 'redirector', 'index.js');

interface Report {
  inNs: boolean;
  state: string;
  error: string | null;
  self: { ok: boolean; reason: string | null } | null;
}

/** Runs the fixture in a new pid namespace, placed in cgroup `inside` first. */
function agentIn(inside: string, attach: string): Promise<{ report: Report | null; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(
      'sh',
      [
        '-c',
        'echo $$ > "$0/cgroup.procs" && exec unshare --pid --fork "$@"',
        inside,
        process.execPath,
        FIXTURE,
        INDEX,
        attach,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => {
      out += d;
    });
    c.stderr.on('data', (d) => {
      err += d;
    });
    const t = setTimeout(() => c.kill('SIGKILL'), 30_000);
    c.on('exit', () => {
      clearTimeout(t);
      const line = out.trim().split('\n').at(-1) ?? '';
      resolve({ report: line ? (JSON.parse(line) as Report) : null, stderr: err });
    });
  });
}

describe('redirector in a pid namespace', { skip: gate.skip }, () => {
  let cg: TestCgroup;
  before(() => {
    gate.check();
    cg = createTestCgroup('pidns');
  });
  after(async () => {
    await cg?.cleanup();
  });

  test('agent in its own cgroup under the attach point: exempt by cgroup id, self-test passes', async () => {
    const own = path.join(cg.path, 'agent');
    mkdirSync(own);
    const { report, stderr } = await agentIn(own, cg.path);
    assert.ok(report, stderr);
    assert.equal(report.inNs, true);
    assert.equal(report.state, 'running', `${report.error}\n${stderr}`);
    assert.deepEqual(report.self, { ok: true, reason: null });
  });

  test('agent in the attach cgroup itself: refused with a message naming the cgroup', async () => {
    const { report, stderr } = await agentIn(cg.path, cg.path);
    assert.ok(report, stderr);
    assert.equal(report.inNs, true);
    assert.notEqual(report.state, 'running');
    assert.ok(report.error?.includes(cg.path) || /cgroup/.test(report.error ?? ''), String(report.error));
    assert.equal(report.self, null);
  });
});
