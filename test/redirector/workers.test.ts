// lookupConnection from two worker threads at once returns the right records.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as redirector from '../../lib/redirector/index.js';
import { createTestCgroup, type TestCgroup } from '../helpers/cgroup.js';
import { ebpfGate } from '../helpers/ebpf-env.js';
import { type HeldClient, holdClient, type LookupServer, randomPort, startLookupServer } from './harness.js';

const gate = ebpfGate();
const workerFile = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'lookup-worker.js');

describe('redirector lookups from worker threads', { skip: gate.skip }, () => {
  let cg: TestCgroup;
  let server: LookupServer;
  const held: HeldClient[] = [];
  const dstPort = randomPort();

  before(async () => {
    gate.check();
    cg = createTestCgroup('workers');
    assert.equal(redirector.start({ cgroupPath: cg.path }).state, 'running');
    server = await startLookupServer('127.0.0.1', 'none');
    redirector.setRule({ dst: '127.254.169.254', dstPort, proxy: '127.0.0.1', proxyPort: server.port });
  });

  after(async () => {
    for (const h of held) await h.release();
    redirector.stop();
    await server?.close();
    await cg?.cleanup();
  });

  test('two workers look up the same 60 connections at once', async () => {
    for (let i = 0; i < 3; i++) held.push(await holdClient(cg, { host: '127.254.169.254', port: dstPort, count: 20 }));
    const expected = held.flatMap((h) => h.report.ports.map((p) => ({ port: p, pid: h.report.pid })));
    const tuples = expected.map((e) => ({ peerPort: e.port, localPort: server.port }));
    const workers = [0, 1].map(() => new Worker(workerFile, { workerData: { tuples, rounds: 200 }, execArgv: [] }));
    const results = await Promise.all(workers.map(async (w) => (await once(w, 'message'))[0] as (number | null)[]));
    for (const r of results)
      assert.deepEqual(
        r,
        expected.map((e) => e.pid),
      );
    // and the main thread still sees the same, then consumes each exactly once
    for (const e of expected) {
      const o = redirector.lookupConnection(
        { address: '127.0.0.1', port: e.port },
        { address: '127.0.0.1', port: server.port },
      );
      assert.equal(o?.pid, e.pid);
    }
    assert.equal(redirector.stats().conn_entries, 0n);
  });
});
