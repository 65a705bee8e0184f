// 1,000 connects held open at once from four processes: every one attributed to the right
// process, and the connection map is empty afterwards.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as redirector from '../../lib/redirector/index.js';
import { createTestCgroup, type TestCgroup } from '../helpers/cgroup.js';
import { ebpfGate } from '../helpers/ebpf-env.js';
import { type LookupServer, randomPort, runClient, startLookupServer } from './harness.js';

const gate = ebpfGate();
const PROCESSES = 4;
const PER_PROCESS = 250;

describe('redirector under 1,000 concurrent connects', { skip: gate.skip }, () => {
  let cg: TestCgroup;
  let server: LookupServer;
  const dstPort = randomPort();

  before(async () => {
    gate.check();
    cg = createTestCgroup('conc');
    const st = redirector.start({ cgroupPath: cg.path, connMapSize: 4096 });
    assert.equal(st.state, 'running', JSON.stringify(st.lastError));
    server = await startLookupServer('127.0.0.1');
    redirector.setRule({ dst: '127.63.129.16', dstPort, proxy: '127.0.0.1', proxyPort: server.port });
  });

  after(async () => {
    redirector.stop();
    await server?.close();
    await cg?.cleanup();
  });

  test('100% attributed to the owning process; by_conn empty afterwards', async () => {
    const reports = await Promise.all(
      Array.from({ length: PROCESSES }, (_, i) =>
        runClient(cg, { host: '127.63.129.16', port: dstPort, count: PER_PROCESS, uid: 1000 + i, gid: 2000 + i }),
      ),
    );
    await server.waitFor(PROCESSES * PER_PROCESS);
    const byPort = new Map(server.accepted.map((a) => [a.remotePort, a.origin]));
    let attributed = 0;
    for (const r of reports) {
      assert.equal(r.error, null);
      assert.equal(r.ports.length, PER_PROCESS);
      assert.ok(r.replies.every((x) => x === `ok ${r.pid}`));
      for (const port of r.ports) {
        const o = byPort.get(port);
        assert.ok(o, `connection from port ${port} attributed`);
        assert.equal(o.pid, r.pid);
        assert.equal(o.uid, r.uid);
        assert.equal(o.gid, r.gid);
        attributed++;
      }
    }
    assert.equal(attributed, PROCESSES * PER_PROCESS);
    const s = redirector.stats();
    assert.equal(s.conn_entries, 0n);
    assert.equal(s.publish_failed, 0n);
    assert.equal(s.store_failed, 0n);
  });
});
