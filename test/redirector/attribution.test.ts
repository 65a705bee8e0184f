// Attribution is exact for each kind of client, and nothing else is attributed. Real eBPF on a
// child cgroup; the listener is a plain Node server on 127.0.0.1 / ::1.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as redirector from '../../lib/redirector/index.js';
import { createTestCgroup, type TestCgroup } from '../helpers/cgroup.js';
import { ebpfGate } from '../helpers/ebpf-env.js';
import { clientPy, type LookupServer, python, randomPort, runClient, startLookupServer } from './harness.js';

const gate = ebpfGate();
const IMDS_ALIAS = '127.254.169.254';

describe('redirector attribution', { skip: gate.skip }, () => {
  let cg: TestCgroup;
  let v4: LookupServer;
  let v6: LookupServer;
  const dstPort = randomPort();

  before(async () => {
    gate.check();
    cg = createTestCgroup('attr');
    const st = redirector.start({ cgroupPath: cg.path, connMapSize: 1024 });
    assert.equal(st.state, 'running', JSON.stringify(st.lastError));
    v4 = await startLookupServer('127.0.0.1');
    v6 = await startLookupServer('::1');
    redirector.setRule({ dst: IMDS_ALIAS, dstPort, proxy: '127.0.0.1', proxyPort: v4.port });
    redirector.setRule({ dst: '::1', dstPort, proxy: '::1', proxyPort: v6.port });
  });

  after(async () => {
    redirector.stop();
    await v4?.close();
    await v6?.close();
    await cg?.cleanup();
  });

  const origins = (s: LookupServer, ports: number[]) =>
    ports.map((p) => s.accepted.find((a) => a.remotePort === p)?.origin ?? null);

  test('status lists the five programs attached to the child cgroup', () => {
    const st = redirector.status();
    assert.equal(st.state, 'running');
    assert.equal(st.mode, 'links');
    assert.equal(st.cgroupPath, cg.path);
    assert.deepEqual(
      st.programs.map((p) => [p.name, p.attached, p.id > 0]),
      [
        ['connect4', true, true],
        ['connect6', true, true],
        ['sockops', true, true],
        ['bind4', true, true],
        ['bind6', true, true],
      ],
    );
    assert.deepEqual(
      redirector.listRules().sort((a, b) => a.dst.localeCompare(b.dst)),
      [
        { dst: '127.254.169.254', dstPort, proxy: '127.0.0.1', proxyPort: v4.port },
        { dst: '::1', dstPort, proxy: '::1', proxyPort: v6.port },
      ].sort((a, b) => a.dst.localeCompare(b.dst)),
    );
  });

  for (const who of [
    { label: 'root', uid: undefined, gid: undefined, expUid: 0, expGid: 0 },
    { label: 'setpriv --reuid=1001 --regid=0', uid: 1001, gid: 0, expUid: 1001, expGid: 0 },
    { label: 'setpriv --reuid=0 --regid=1001', uid: 0, gid: 1001, expUid: 0, expGid: 1001 },
  ]) {
    test(`exact uid/gid/pid for ${who.label}`, async () => {
      const r = await runClient(cg, { host: IMDS_ALIAS, port: dstPort, uid: who.uid, gid: who.gid });
      assert.equal(r.error, null);
      assert.deepEqual(r.replies, [`ok ${r.pid}`]);
      const [o] = origins(v4, r.ports);
      assert.ok(o, 'attributed');
      // By fd (the agent's accept path) the same record is found as by address.
      assert.deepEqual(v4.accepted.find((a) => a.remotePort === r.ports[0])?.byFd, o);
      assert.equal(o.pid, r.pid);
      assert.equal(o.tid, r.pid);
      assert.equal(o.uid, who.expUid);
      assert.equal(o.gid, who.expGid);
      assert.equal(o.comm, 'python3');
      assert.equal(o.cgroupId, cg.id);
      assert.equal(o.origDst, IMDS_ALIAS);
      assert.equal(o.origPort, dstPort);
      assert.equal(o.family, 4);
      assert.equal(o.viaV4Mapped, false);
      assert.equal(typeof o.cookie, 'bigint');
    });
  }

  test('threaded client: pid is the tgid, tid the connecting thread', async () => {
    const r = await runClient(cg, { host: IMDS_ALIAS, port: dstPort, thread: true });
    const [o] = origins(v4, r.ports);
    assert.ok(o);
    assert.equal(o.pid, r.pid);
    assert.equal(o.tid, r.tid);
    assert.notEqual(o.tid, o.pid);
  });

  test('client with a bound source port', async () => {
    const r = await runClient(cg, { host: IMDS_ALIAS, port: dstPort, bind: 0 });
    const [o] = origins(v4, r.ports);
    assert.ok(o);
    assert.equal(o.pid, r.pid);
  });

  test('AF_INET6 client to a v4-mapped address', async () => {
    const r = await runClient(cg, { host: `::ffff:${IMDS_ALIAS}`, port: dstPort, family: 6 });
    assert.equal(r.error, null);
    const [o] = origins(v4, r.ports);
    assert.ok(o, 'attributed at the IPv4 listener');
    assert.equal(o.pid, r.pid);
    assert.equal(o.origDst, IMDS_ALIAS);
    assert.equal(o.family, 4);
    assert.equal(o.viaV4Mapped, true);
  });

  test('native IPv6 rule on ::1', async () => {
    const r = await runClient(cg, { host: '::1', port: dstPort, family: 6 });
    assert.equal(r.error, null);
    const [o] = origins(v6, r.ports);
    assert.ok(o);
    assert.deepEqual(v6.accepted.find((a) => a.remotePort === r.ports[0])?.byFd, o, 'by fd on an IPv6 socket');
    assert.equal(o.pid, r.pid);
    assert.equal(o.origDst, '::1');
    assert.equal(o.family, 6);
    assert.equal(o.viaV4Mapped, false);
  });

  test('listener ports follow the rules: shared listener, rule removed, rule moved', async () => {
    // sockops only looks for records on sockets to a port some rule redirects to (listener_ports)
    const other = await startLookupServer('127.0.0.1');
    const alias = '127.254.169.250';
    const port2 = randomPort();
    try {
      redirector.setRule({ dst: alias, dstPort: port2, proxy: '127.0.0.1', proxyPort: v4.port });
      redirector.removeRule(alias, port2);
      let r = await runClient(cg, { host: IMDS_ALIAS, port: dstPort });
      assert.deepEqual(r.replies, [`ok ${r.pid}`], 'the remaining rule to the shared listener still attributes');
      redirector.setRule({ dst: alias, dstPort: port2, proxy: '127.0.0.1', proxyPort: v4.port });
      redirector.setRule({ dst: alias, dstPort: port2, proxy: '127.0.0.1', proxyPort: other.port });
      r = await runClient(cg, { host: alias, port: port2 });
      assert.deepEqual(r.replies, [`ok ${r.pid}`], 'a rule moved to another listener attributes there');
      r = await runClient(cg, { host: IMDS_ALIAS, port: dstPort });
      assert.deepEqual(r.replies, [`ok ${r.pid}`], 'and the first listener keeps its port');
    } finally {
      redirector.removeRule(alias, port2);
      await other.close();
    }
  });

  test('a direct connect to the listener is not attributed', async () => {
    const r = await runClient(cg, { host: '127.0.0.1', port: v4.port });
    assert.deepEqual(r.replies, ['ok none']);
    assert.equal(origins(v4, r.ports)[0], null);
  });

  test('a stale-port spoof by another user gets null', async () => {
    const quiet = await startLookupServer('127.0.0.1', 'none');
    const spoofPort = randomPort();
    redirector.setRule({ dst: '127.254.169.253', dstPort: spoofPort, proxy: '127.0.0.1', proxyPort: quiet.port });
    try {
      // root connects through the redirect and holds the connection; nobody consumes the record
      const holder = cg.spawn(python, [
        ...[clientPy, '--host', '127.254.169.253', '--port', String(spoofPort), '--bind', '0', '--hold'],
      ]);
      const line = await new Promise<string>((resolve, reject) => {
        holder.stdout?.once('data', (d) => resolve(String(d)));
        holder.once('exit', (c) => reject(new Error(`holder exited ${c}`)));
      });
      const held = JSON.parse(line) as { pid: number; ports: number[] };
      const sport = held.ports[0]!;
      const key = [
        { address: '127.0.0.1', port: sport },
        { address: '127.0.0.1', port: quiet.port },
      ] as const;
      const before = redirector.lookupConnection(key[0], key[1], { consume: false });
      assert.equal(before?.pid, held.pid, 'the record exists while root holds the connection');
      const cleanedBefore = redirector.stats().cleaned!;
      holder.stdin?.end('close\n');
      await new Promise((resolve) => holder.once('exit', resolve));
      assert.equal(redirector.lookupConnection(key[0], key[1], { consume: false }), null, 'removed at TCP_CLOSE');
      assert.equal(redirector.stats().cleaned, cleanedBefore + 1n);
      // uid 1001 takes the same source port and connects straight to the listener
      const spoof = await runClient(cg, { host: '127.0.0.1', port: quiet.port, bind: sport, uid: 1001, gid: 1001 });
      assert.equal(spoof.error, null);
      assert.deepEqual(spoof.ports, [sport]);
      assert.equal(redirector.lookupConnection(key[0], key[1]), null);
    } finally {
      redirector.removeRule('127.254.169.253', spoofPort);
      await quiet.close();
    }
  });

  test('self-test passes and attributes its child', async () => {
    const r = await redirector.selfTest({ timeoutMs: 15_000 });
    assert.equal(r.ok, true, r.reason);
    assert.equal(r.origin?.pid, r.childPid);
    assert.equal(redirector.status().state, 'running');
  });

  test('every record was consumed or cleaned: by_conn is empty', async () => {
    const s = redirector.stats();
    assert.equal(s.conn_entries, 0n);
    assert.ok(
      s.redirected4! >= 6n && s.redirected6! >= 1n,
      JSON.stringify(s, (_, v) => String(v)),
    );
    assert.equal(s.publish_failed, 0n);
  });
});
