import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  ClaimsResolver,
  currentComm,
  type ProcessSnapshotReader,
  readExeIdentity,
  readProcessSnapshot,
  readStartTime,
} from '../../lib/identity/index.js';
import { processSnapshotReader } from '../../lib/redirector/index.js';

// The addon's reader is what the agent's workers use on Linux; node:fs's is the fallback. Both
// must give the same answers.
const addonReader = processSnapshotReader();
const readers: [string, ProcessSnapshotReader][] = [['node:fs', readProcessSnapshot]];
if (addonReader !== null) readers.push(['addon', addonReader]);

const SLEEP = '/usr/bin/sleep';

/** Spawns `file args` and waits until it has exec'd: its comm is `comm` and /proc has its command line. */
async function started(file: string, args: string[], comm: string) {
  const child = spawn(file, args, { stdio: 'ignore' });
  const pid = child.pid!;
  for (let i = 0; i < 200; i++) {
    if (currentComm(pid, pid) === comm && (readProcessSnapshot(pid)?.rawCmdline.length ?? 0) > 0) return child;
    await new Promise((r) => setTimeout(r, 5));
  }
  child.kill('SIGKILL');
  throw new Error(`${file} never started`);
}

describe('process snapshot', () => {
  it('has the addon reader on Linux', () => {
    if (process.platform === 'linux') assert.ok(addonReader !== null, 'the addon exports procSnapshot');
  });

  for (const [name, read] of readers) {
    describe(name, () => {
      it('reads a live process: start time, executable, command line, cgroup', async () => {
        const child = await started(SLEEP, ['30', '31'], 'sleep');
        try {
          const pid = child.pid!;
          const s = read(pid);
          assert.ok(s !== null);
          assert.equal(s.startTime, readStartTime(pid));
          const exe = statSync(SLEEP, { bigint: true });
          assert.equal(s.exeDev, exe.dev);
          assert.equal(s.exeIno, exe.ino);
          assert.equal(s.exePath, SLEEP);
          assert.equal(s.rawCmdline, `${SLEEP} 30 31`);
          assert.equal(s.cgroup, readFileSync(`/proc/${pid}/cgroup`, 'latin1'));
          assert.equal(s.stable, true);
        } finally {
          child.kill('SIGKILL');
        }
      });

      it('gives null for a process that is gone and for a kernel thread', async () => {
        const child = spawn('true', [], { stdio: 'ignore' });
        await new Promise((r) => child.once('exit', r));
        assert.equal(read(child.pid!), null);
        assert.equal(read(2), null, 'kthreadd has no executable');
        assert.equal(read(0x7ffffffe), null);
      });

      it("keeps at most 16 KiB of a command line, however long the process's arguments are", async () => {
        const args = Array.from({ length: 16 }, () => 'x'.repeat(64 * 1024));
        const child = await started(process.execPath, ['-e', 'setTimeout(() => {}, 5000)', ...args], 'node');
        try {
          const s = read(child.pid!);
          assert.ok(s?.rawCmdline.includes('setTimeout'), 'the command line was read');
          assert.ok(s!.rawCmdline.length <= 16 * 1024, `read ${s!.rawCmdline.length} characters`);
          assert.ok(s!.rawCmdline.length > 15 * 1024, `read ${s!.rawCmdline.length} characters`);
        } finally {
          child.kill('SIGKILL');
        }
      });

      it('names no path for a deleted binary or one renamed over', async () => {
        const dir = mkdtempSync(path.join(os.tmpdir(), 'gpa-snap-'));
        const deleted = path.join(dir, 'sleepdel');
        const replaced = path.join(dir, 'sleeprep');
        copyFileSync(SLEEP, deleted);
        copyFileSync(SLEEP, replaced);
        const a = await started(deleted, ['30'], 'sleepdel');
        const b = await started(replaced, ['30'], 'sleeprep');
        try {
          const ranA = statSync(deleted, { bigint: true });
          unlinkSync(deleted);
          const ranB = statSync(replaced, { bigint: true });
          copyFileSync(SLEEP, path.join(dir, 'other'));
          renameSync(path.join(dir, 'other'), replaced);
          const sa = read(a.pid!);
          const sb = read(b.pid!);
          assert.ok(sa !== null && sb !== null);
          assert.equal(sa.exePath, null);
          assert.equal(sa.exeIno, ranA.ino, 'the running file, not the path');
          assert.equal(sb.exePath, null);
          assert.equal(sb.exeIno, ranB.ino);
          assert.equal(sa.stable && sb.stable, true);
        } finally {
          a.kill('SIGKILL');
          b.kill('SIGKILL');
          rmSync(dir, { recursive: true, force: true });
        }
      });

      it('gives the claims resolver what it needs for a kernel-identified caller', async () => {
        const child = await started(SLEEP, ['30'], 'sleep');
        try {
          const pid = child.pid!;
          const exe = readExeIdentity(pid)!;
          const facts = {
            pid,
            tid: pid,
            uid: 4242,
            gid: 0,
            comm: 'sleep',
            cgroupId: 5n,
            exeDev: exe.dev,
            exeIno: exe.ino,
            startTimeNs: BigInt(readStartTime(pid)!) * 10_000_000n,
          };
          const resolver = () =>
            new ClaimsResolver({ userInfo: () => ({ name: 'u', groups: [] }), groupName: () => null, snapshot: read });
          const c = resolver().resolve(facts);
          assert.equal(c.degraded, null);
          assert.equal(c.exePath, SLEEP);
          assert.equal(c.cmdline, `${SLEEP} 30`);
          assert.equal(
            resolver().resolve({ ...facts, startTimeNs: facts.startTimeNs + 10_000_000n }).degraded,
            'exited',
          );
          assert.equal(resolver().resolve({ ...facts, exeIno: exe.ino + 1n }).degraded, 'exec-after-connect');
        } finally {
          child.kill('SIGKILL');
        }
      });
    });
  }
});
