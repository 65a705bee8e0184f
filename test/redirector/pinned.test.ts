// Pinned mode: SIGKILL of the owner fails closed (clients refused, nothing reaches the real
// destination), a restart reuses the pins and works, the owner's own connect is never redirected,
// and stop({ unpin: true }) removes everything.
import assert from 'node:assert/strict';
import { type ChildProcess, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createTestCgroup, type TestCgroup } from '../helpers/cgroup.js';
import { ebpfGate } from '../helpers/ebpf-env.js';
import { runClient } from './harness.js';

const gate = ebpfGate();
const ownerJs = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'pinned-owner.js');
const DST = '127.254.169.251';

interface OwnerReport {
  pid: number;
  port: number;
  self: string;
  status: { state: string; mode: string; warnings?: string[] };
}

/** Programs bpftool sees attached to the cgroup, by name. */
function attachedNames(cgroupPath: string): string[] {
  const r = spawnSync('bpftool', ['-j', 'cgroup', 'show', cgroupPath], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  return (JSON.parse(r.stdout.trim() || '[]') as { name: string }[]).map((p) => p.name).sort();
}

describe('redirector pinned mode', { skip: gate.skip }, () => {
  let cg: TestCgroup;
  let upstream: net.Server;
  let upstreamHits = 0;
  let dstPort = 0;
  const pinDir = `/sys/fs/bpf/gpa-test-${process.pid}-pinned`;
  const owners: ChildProcess[] = [];

  async function startOwner(): Promise<{ child: ChildProcess; report: OwnerReport }> {
    const child = cg.spawn(process.execPath, [
      ownerJs,
      JSON.stringify({ cgroupPath: cg.path, pinDir, dst: DST, dstPort }),
    ]);
    owners.push(child);
    const report = await new Promise<OwnerReport>((resolve, reject) => {
      let buf = '';
      child.stdout?.on('data', (d) => {
        buf += d;
        if (buf.includes('\n')) resolve(JSON.parse(buf.split('\n')[0]!) as OwnerReport);
      });
      child.once('exit', (c) => reject(new Error(`owner exited early (${c})`)));
    });
    return { child, report };
  }

  before(async () => {
    gate.check();
    cg = createTestCgroup('pinned');
    // The "real" destination: only the exempt owner may reach it.
    upstream = net.createServer((s) => {
      upstreamHits++;
      s.end('upstream\n');
    });
    await new Promise<void>((resolve) => upstream.listen(0, DST, resolve));
    dstPort = (upstream.address() as net.AddressInfo).port;
  });

  after(async () => {
    for (const o of owners) o.kill('SIGKILL');
    rmSync(pinDir, { recursive: true, force: true });
    upstream?.close();
    await cg?.cleanup();
  });

  test('crash fails closed; restart reuses pins; unpin removes them', async () => {
    const first = await startOwner();
    assert.equal(first.report.status.state, 'running', JSON.stringify(first.report.status));
    assert.equal(first.report.status.mode, 'pinned');
    assert.equal(first.report.self, 'upstream', "the owner's own connect is not redirected");
    const hitsAfterOwner = upstreamHits;

    const c1 = await runClient(cg, { host: DST, port: dstPort });
    assert.deepEqual(c1.replies, [`ok ${c1.pid}`], 'a client is redirected and attributed');

    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    assert.deepEqual(
      readdirSync(pinDir)
        .filter((n) => n.startsWith('link_'))
        .sort(),
      ['link_bind4', 'link_bind6', 'link_connect4', 'link_connect6', 'link_sockops'],
    );
    const c2 = await runClient(cg, { host: DST, port: dstPort });
    assert.equal(c2.error, 'ECONNREFUSED', 'with the owner gone, the connect is refused');
    assert.equal(upstreamHits, hitsAfterOwner, 'nothing reached the real destination');

    // an upgrade from a build that kept the record in socket storage: its pin must not outlive us
    const obsolete = path.join(pinDir, 'sk_origin');
    const mk = spawnSync('bpftool', [
      'map',
      'create',
      obsolete,
      'type',
      'hash',
      'key',
      '4',
      'value',
      '4',
      'entries',
      '1',
      'name',
      'sk_origin',
    ]);
    assert.equal(mk.status, 0, String(mk.stderr));
    const second = await startOwner();
    assert.equal(second.report.status.state, 'running', JSON.stringify(second.report.status));
    assert.equal(existsSync(obsolete), false, 'the obsolete sk_origin pin was removed on start');
    assert.equal(second.report.self, 'upstream', 'the new owner is exempt (stale exemption replaced)');
    assert.deepEqual(
      attachedNames(cg.path),
      ['gpa_bind4', 'gpa_bind6', 'gpa_connect4', 'gpa_connect6', 'gpa_sockops'],
      'one set attached',
    );
    const c3 = await runClient(cg, { host: DST, port: dstPort });
    assert.deepEqual(c3.replies, [`ok ${c3.pid}`]);

    second.child.stdin?.write('stop\n');
    await new Promise((resolve) => second.child.once('exit', resolve));
    assert.equal(existsSync(pinDir), false, 'pins removed');
    assert.deepEqual(attachedNames(cg.path), [], 'programs detached');
    const c4 = await runClient(cg, { host: DST, port: dstPort });
    assert.deepEqual(c4.replies, ['upstream'], 'after unpin, connects go where they asked');
  });
});
