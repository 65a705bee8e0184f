// Hostile callers against the redirect itself: no connect to a protected destination may get past
// the agent by filling the hand-off slots, by coming from another network namespace, or by being
// handed the pid of an exempted process that is gone.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as redirector from '../../lib/redirector/index.js';
import { createTestCgroup, type TestCgroup } from '../helpers/cgroup.js';
import { ebpfGate } from '../helpers/ebpf-env.js';
import { type LookupServer, python, randomPort, repoRoot, startLookupServer } from './harness.js';

const gate = ebpfGate();
const fixture = path.join(repoRoot, 'test', 'redirector', 'fixtures', 'hostile-client.py');
const DST = '127.63.129.16';

/** What the protected destination itself answers: seeing it means the connect was not redirected. */
async function startUpstream(port: number): Promise<net.Server> {
  const s = net.createServer((c) => {
    c.on('error', () => {});
    c.end('UPSTREAM\n');
  });
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, DST, resolve);
  });
  return s;
}

/** A port nothing listens on right now (the kernel's pick, released at once). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function lastJson<T>(stdout: string): T {
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as T;
}

describe('redirector against hostile callers', { skip: gate.skip }, () => {
  let cg: TestCgroup;
  let server: LookupServer;
  let upstream: net.Server;
  const dstPort = randomPort();
  const pinDir = `/sys/fs/bpf/gpa-test-${process.pid}-hostile`;
  const netns = `gpa-test-${process.pid}-hostile`;
  let squatter: ChildProcess | null = null;

  before(async () => {
    gate.check();
    cg = createTestCgroup('hostile');
    // Pinned, so the exemption map can be edited as a stale entry would look (test 3).
    const st = redirector.start({ cgroupPath: cg.path, pinDir });
    assert.equal(st.state, 'running', JSON.stringify(st.lastError));
    server = await startLookupServer('127.0.0.1');
    upstream = await startUpstream(dstPort);
    redirector.setRule({ dst: DST, dstPort, proxy: '127.0.0.1', proxyPort: server.port });
  });

  after(async () => {
    squatter?.kill('SIGKILL');
    spawnSync('ip', ['netns', 'delete', netns]);
    redirector.stop({ unpin: true });
    rmSync(pinDir, { recursive: true, force: true });
    await server?.close();
    await new Promise((r) => (upstream ? upstream.close(() => r(null)) : r(null)));
    await cg?.cleanup();
  });

  test('a connect from another network namespace is refused, not sent to whoever listens on its loopback', async () => {
    execFileSync('ip', ['netns', 'add', netns]);
    execFileSync('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    assert.equal(execFileSync('ip', ['-n', netns, '-o', 'link'], { encoding: 'utf8' }).trim().split('\n').length, 1);
    // In that namespace something listens on the agent's port.
    const squat = [
      'import socket',
      's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
      `s.bind(('127.0.0.1', ${server.port})); s.listen(8); s.settimeout(20)`,
      'while True:',
      "  c, _ = s.accept(); c.sendall(b'SQUATTER\\n'); c.close()",
    ].join('\n');
    squatter = spawn('ip', ['netns', 'exec', netns, python, '-c', squat], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    const before = redirector.stats();
    const r = await cg.run('nsenter', [`--net=/run/netns/${netns}`, python, fixture, 'connect', DST, String(dstPort)], {
      uid: 0,
    });
    const out = lastJson<{ answer: string }>(r.stdout);
    assert.equal(out.answer, 'error EPERM', `root in another namespace got: ${out.answer}`);
    const after = redirector.stats();
    assert.equal((after.foreign_netns ?? 0n) - (before.foreign_netns ?? 0n), 1n);
    assert.equal(after.conn_entries, 0n, 'no record was published for it');
    assert.equal(server.accepted.length, 0);
  });

  test('an exempt pid is exempt only for the process it was given to, not a later one with that pid', async () => {
    const child = cg.spawn(python, [fixture, 'on-demand', DST, String(dstPort)], { uid: 65534, gid: 65534 });
    const lines: string[] = [];
    let partial = '';
    let waiting: (() => void) | null = null;
    child.stdout!.on('data', (d: Buffer) => {
      const parts = (partial + d.toString()).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts.filter((l) => l.trim() !== ''));
      waiting?.();
    });
    const next = async (): Promise<Record<string, unknown>> => {
      const t0 = Date.now();
      while (lines.length === 0 && Date.now() - t0 < 10_000) {
        await new Promise<void>((r) => {
          waiting = r;
          setTimeout(r, 200);
        });
      }
      return JSON.parse(lines.shift() ?? '{}') as Record<string, unknown>;
    };
    try {
      const pid = (await next()).pid as number;
      child.stdin!.write('go\n');
      assert.match(String((await next()).answer), /^ok \d+$/, 'not exempt yet: redirected and attributed');
      redirector.addExemptPid(pid);
      child.stdin!.write('go\n');
      assert.equal((await next()).answer, 'UPSTREAM', 'exempt: goes where it asked');
      // What the entry looks like once that process is gone and the pid handed to another one: the
      // same pid, another start time.
      const mapPath = path.join(pinDir, 'exempt_tgid');
      const dump = JSON.parse(execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', mapPath], { encoding: 'utf8' }));
      const entry = (dump as { key: string[]; value: string[] }[]).find(
        (e) => Buffer.from(e.key.map((b) => Number.parseInt(b, 16))).readUInt32LE(0) === pid,
      );
      assert.ok(entry, `exempt_tgid holds pid ${pid}`);
      const value = Buffer.from(entry.value.map((b) => Number.parseInt(b, 16)));
      assert.equal(value.length, 16, 'the entry carries a start time');
      value.writeBigUInt64LE(value.readBigUInt64LE(8) + 1n, 8);
      const hex = (b: Buffer) => [...b].map((x) => x.toString(16).padStart(2, '0'));
      execFileSync('bpftool', [
        'map',
        'update',
        'pinned',
        mapPath,
        'key',
        'hex',
        ...entry.key.map((k) => k.replace(/^0x/, '')),
        'value',
        'hex',
        ...hex(value),
      ]);
      child.stdin!.write('go\n');
      assert.match(String((await next()).answer), /^ok \d+$/, 'a stale exemption is not honoured');
    } finally {
      child.stdin!.end();
      child.kill('SIGKILL');
      redirector.removeExemptPid(child.pid ?? 0);
    }
  });

  test('only root may bind a listener port of the rules on loopback or the wildcard address', async () => {
    // The agent is down (pinned links, nothing listening on the rule's proxy port): a squatter
    // would receive redirected connects and keep the restarted agent out.
    const downPort = await freePort();
    let otherPort = await freePort();
    while (otherPort === downPort) otherPort = await freePort();
    redirector.setRule({ dst: DST, dstPort: dstPort + 1, proxy: '127.0.0.1', proxyPort: downPort });
    try {
      const bind = async (host: string, port: number, uid: number) =>
        lastJson<{ result: string }>(
          (await cg.run(python, [fixture, 'bind', host, String(port)], { uid, gid: uid })).stdout,
        ).result;
      const before = redirector.stats().bind_refused ?? 0n;
      for (const host of ['127.0.0.1', '0.0.0.0', '127.0.0.2', '::', '::1', '::ffff:127.0.0.1']) {
        assert.equal(await bind(host, downPort, 65534), 'error EPERM', `nobody binding [${host}]:${downPort}`);
      }
      assert.equal((redirector.stats().bind_refused ?? 0n) - before, 6n);
      assert.equal(await bind('127.0.0.1', otherPort, 65534), 'ok', 'another port');
      assert.equal(await bind('127.0.0.1', downPort, 0), 'ok', 'root (the agent) may');
    } finally {
      redirector.removeRule(DST, dstPort + 1);
    }
  });

  // Last: it leaves the hand-off slots full for GPA_HANDOFF_STALE_NS.
  test('filling the hand-off slots neither lets a connect past the agent nor costs it its attribution', async () => {
    const before = redirector.stats();
    const r = await cg.run(python, [fixture, 'fill', DST, String(dstPort), '300'], { uid: 65534, gid: 65534 });
    const out = lastJson<{ pid: number; failed: number; then: string[] }>(r.stdout);
    assert.ok(out.failed >= 200, `connects that left a record behind: ${out.failed}`);
    const after = redirector.stats();
    assert.ok((after.handoff_spilled ?? 0n) > (before.handoff_spilled ?? 0n), 'the slots were full');
    assert.equal(after.store_failed, before.store_failed, 'every record found a place');
    // Redirected, and attributed: the records the slots had no room for went to the spill map.
    assert.deepEqual(out.then, Array(3).fill(`ok ${out.pid}`));
  });

  test('a record spilled by full slots is never published for another socket', async () => {
    // The slots are still full from the test before: this connect spills too. A second socket that
    // connects to the listener directly (no redirect) must not come out attributed.
    const before = redirector.stats();
    const r = await cg.run(python, [fixture, 'connect', DST, String(dstPort)], { uid: 65534, gid: 65534 });
    const out = lastJson<{ pid: number; answer: string }>(r.stdout);
    assert.equal(out.answer, `ok ${out.pid}`);
    const direct = await cg.run(python, [fixture, 'connect', '127.0.0.1', String(server.port)], {
      uid: 65534,
      gid: 65534,
    });
    assert.equal(lastJson<{ answer: string }>(direct.stdout).answer, 'ok none');
    assert.ok((redirector.stats().handoff_spilled ?? 0n) > (before.handoff_spilled ?? 0n), 'it spilled');
  });
});
