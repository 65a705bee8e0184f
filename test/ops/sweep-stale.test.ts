// npm test starts by sweeping what an interrupted run left behind (scripts/sweep-stale.mjs): cgroups
// and pins named after a process that no longer exists go, with what still runs in them; those of
// a live process stay.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { discoverCgroup2Root } from '../../lib/redirector/index.js';
import { ebpfGate } from '../helpers/ebpf-env.js';
import { repoRoot } from '../redirector/harness.js';

const gate = ebpfGate();

describe('sweep of stale test leftovers', { skip: gate.skip }, () => {
  let deadPid = 0;
  let cgRoot = '';
  let sleeper: ChildProcess | null = null;
  const made: string[] = [];

  before(() => {
    gate.check();
    const root = discoverCgroup2Root();
    assert.ok(root, 'no cgroup v2 mount');
    cgRoot = root;
    // A pid that existed and is gone: a child that exited.
    deadPid = spawnSync('/bin/true').pid!;
    assert.ok(!existsSync(`/proc/${deadPid}`));
  });

  after(() => {
    sleeper?.kill('SIGKILL');
    // Deepest first. A cgroup goes with rmdir (its files cannot be unlinked); a bpffs folder with rm.
    for (const p of made.reverse()) {
      if (!existsSync(p)) continue;
      if (p.startsWith('/sys/fs/bpf/')) rmSync(p, { recursive: true, force: true });
      else rmdirSync(p);
    }
  });

  test("removes a dead run's cgroup tree (killing what runs there) and pins; keeps a live run's", async () => {
    const staleCg = path.join(cgRoot, `gpa-test-${deadPid}-sweep-1`);
    const staleChild = path.join(staleCg, 'nested');
    const livePins = `/sys/fs/bpf/gpa-test-${process.pid}-sweep`;
    const stalePins = `/sys/fs/bpf/gpa-test-${deadPid}-sweep`;
    const liveCg = path.join(cgRoot, `gpa-test-${process.pid}-sweep-live`);
    for (const d of [staleCg, staleChild, liveCg, stalePins, livePins]) {
      mkdirSync(d);
      made.push(d);
    }
    execFileSync('bpftool', [
      'map',
      'create',
      `${stalePins}/m`,
      ...'type array key 4 value 4 entries 1 name gpa_sweep'.split(' '),
    ]);
    sleeper = spawn('/bin/sleep', ['300'], { stdio: 'ignore' });
    writeFileSync(path.join(staleChild, 'cgroup.procs'), String(sleeper.pid));
    const exited = new Promise((r) => sleeper!.once('exit', r));

    const mod = (await import(pathToFileURL(path.join(repoRoot, 'scripts', 'sweep-stale.mjs')).href)) as {
      sweepStaleLeftovers(): string[];
    };
    const done = mod.sweepStaleLeftovers();

    assert.ok(done.includes(staleCg), JSON.stringify(done));
    assert.ok(done.includes(stalePins), JSON.stringify(done));
    assert.ok(!done.some((p) => p.startsWith('!')), JSON.stringify(done));
    assert.equal(existsSync(staleCg), false);
    assert.equal(existsSync(stalePins), false);
    assert.equal(existsSync(liveCg), true);
    assert.equal(existsSync(livePins), true);
    await exited; // the process left in the stale cgroup was killed with it
  });
});
