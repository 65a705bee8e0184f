// Someone else's program on one of our hooks does not stop the redirector, but status() warns about
// it (it runs alongside ours and may rewrite connects first). The foreign program is a second copy
// of our connect4, attached with bpftool to a child cgroup; detached and unpinned in after().
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import * as redirector from '../../lib/redirector/index.js';
import { createTestCgroup, type TestCgroup } from '../helpers/cgroup.js';
import { ebpfGate } from '../helpers/ebpf-env.js';

const gate = ebpfGate();

describe('redirector: foreign programs on the hooks', { skip: gate.skip }, () => {
  let cg: TestCgroup;
  const pins = `/sys/fs/bpf/gpa-test-${process.pid}-foreign`;
  let attached = false;
  before(() => {
    gate.check();
    cg = createTestCgroup('foreign');
    execFileSync('bpftool', ['prog', 'loadall', redirector.bpfObjectPath(), pins]);
    execFileSync('bpftool', ['cgroup', 'attach', cg.path, 'connect4', 'pinned', `${pins}/gpa_connect4`, 'multi']);
    attached = true;
  });
  after(async () => {
    redirector.stop();
    if (attached) spawnSync('bpftool', ['cgroup', 'detach', cg.path, 'connect4', 'pinned', `${pins}/gpa_connect4`]);
    rmSync(pins, { recursive: true, force: true });
    await cg?.cleanup();
  });

  test('start() runs and warns naming the hook and the cgroup; no warning for the clean hooks', () => {
    const st = redirector.start({ cgroupPath: cg.path, connMapSize: 256 });
    assert.equal(st.state, 'running', JSON.stringify(st.lastError));
    const w = st.warnings ?? [];
    assert.ok(
      w.some((x) => x.includes('1 other program(s) attached to connect4') && x.includes(cg.path)),
      JSON.stringify(w),
    );
    assert.ok(!w.some((x) => /connect6|sockops/.test(x)), JSON.stringify(w));
  });
});
