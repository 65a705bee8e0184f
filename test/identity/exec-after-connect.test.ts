// Scenario 17 at the identity layer, deterministically: the kernel captures the caller's executable
// (dev, ino) at connect time; claims resolved *after* the caller exec'd another binary (with the same
// comm, which the comm check alone cannot see) must not trust the new exe. Real eBPF, child cgroup.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ClaimsResolver, readExePath, readStartTime } from '../../lib/identity/index.js';
import * as redirector from '../../lib/redirector/index.js';
import { createTestCgroup, type TestCgroup } from '../helpers/cgroup.js';
import { ebpfGate } from '../helpers/ebpf-env.js';
import { type LookupServer, python, randomPort, startLookupServer } from '../redirector/harness.js';

const gate = ebpfGate();
const ALIAS = '127.254.169.254';
// Connect, say so, wait for "go", then exec /bin/sleep keeping the socket.
const HELPER = `import os, socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
os.set_inheritable(s.fileno(), True)
print('connected', s.getsockname()[1], flush=True)
sys.stdin.readline()
os.execv('/bin/sleep', ['sleep', '30'])`;

describe('identity: exec after connect (kernel-captured executable)', { skip: gate.skip }, () => {
  let cg: TestCgroup;
  let server: LookupServer;
  let dir: string;
  const dstPort = randomPort();
  const resolver = new ClaimsResolver({ userInfo: redirector.userInfo, groupName: redirector.groupName });

  before(async () => {
    gate.check();
    dir = mkdtempSync(path.join(tmpdir(), 'gpa-exec-'));
    cg = createTestCgroup('exec');
    const st = redirector.start({ cgroupPath: cg.path, connMapSize: 256 });
    assert.equal(st.state, 'running', JSON.stringify(st.lastError));
    server = await startLookupServer('127.0.0.1', 'none');
    redirector.setRule({ dst: ALIAS, dstPort, proxy: '127.0.0.1', proxyPort: server.port });
  });
  after(async () => {
    redirector.stop();
    await server?.close();
    await cg?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('exe (dev, ino) is captured at connect; after an exec to a same-comm binary the exe is unknown', async () => {
    // A copy of the interpreter named "sleep": its comm equals the comm of the binary it will exec.
    const helper = path.join(dir, 'sleep');
    copyFileSync(python, helper);
    const child = cg.spawn(helper, ['-c', HELPER, ALIAS, String(dstPort)], { stdio: ['pipe', 'pipe', 'pipe'] });
    try {
      const clientPort = await new Promise<number>((resolve, reject) => {
        let out = '';
        const t = setTimeout(() => reject(new Error(`helper did not connect: ${out}`)), 10_000);
        child.stdout!.on('data', (d) => {
          out += d;
          const m = /connected (\d+)/.exec(out);
          if (m) {
            clearTimeout(t);
            resolve(Number(m[1]));
          }
        });
      });
      await server.waitFor(1);
      const local = { address: '127.0.0.1', port: server.port };
      const origin = redirector.lookupConnection({ address: '127.0.0.1', port: clientPort }, local, { consume: false });
      assert.ok(origin, 'the connect was attributed');
      assert.equal(origin.platform, 'linux');
      if (origin.platform !== 'linux') return;
      assert.equal(origin.pid, child.pid);
      assert.equal(origin.comm, 'sleep');
      const st = statSync(helper, { bigint: true });
      assert.equal(origin.exeIno, st.ino, 'kernel inode of the caller executable');
      assert.equal(origin.exeDev, st.dev, "kernel device, converted to stat()'s encoding");

      // The kernel's process start time is /proc's field 22 in nanoseconds.
      assert.ok(origin.startTimeNs !== undefined && origin.startTimeNs > 0n, 'kernel start time');
      assert.equal(String(origin.startTimeNs / 10_000_000n), readStartTime(child.pid!));

      const before = resolver.resolve(origin);
      assert.equal(before.degraded, null);
      assert.equal(before.exePath, helper);

      child.stdin!.write('go\n');
      const deadline = Date.now() + 10_000;
      while (readExePath(child.pid!) !== '/usr/bin/sleep') {
        assert.ok(Date.now() < deadline, 'the helper exec');
        await new Promise((r) => setTimeout(r, 20));
      }
      // Identity is fixed at connect time: the connection learned earlier is still the helper's.
      assert.equal(resolver.resolve(origin).exePath, helper);
      // Learned only now (a fresh resolver: same pid, same start time, same comm), the running file
      // is not the one the kernel saw connect, and nothing names that one any more: no exe path.
      const afterExec = new ClaimsResolver({ userInfo: redirector.userInfo, groupName: redirector.groupName }).resolve(
        origin,
      );
      assert.equal(afterExec.degraded, 'exec-after-connect');
      assert.equal(afterExec.exePath, null);
      assert.equal(afterExec.uid, 0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
