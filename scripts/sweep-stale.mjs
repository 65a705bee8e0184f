// Removes what an interrupted test or bench run left behind: child cgroups `gpa-test-<pid>-...` /
// `gpa-bench-<pid>` and bpffs pins `gpa-test-<pid>-...`, but only when process <pid> no longer
// exists (a running suite's leftovers are its own to clean). Pins go first: removing a pinned link
// detaches its program, and an emptied cgroup can then be removed.
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const OWNED = /^gpa-(?:test|bench)-(\d+)(?:-|$)/;

function entries(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function stale(name) {
  const m = OWNED.exec(name);
  return m !== null && !existsSync(`/proc/${m[1]}`);
}

function cgroup2Roots() {
  let mounts = '';
  try {
    mounts = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return [];
  }
  return mounts
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === 'cgroup2')
    .map((f) => f[1]);
}

/** Kills what still runs in a cgroup tree and removes it, deepest first. */
function removeCgroup(dir) {
  for (const name of entries(dir)) {
    const p = path.join(dir, name);
    if (statSync(p, { throwIfNoEntry: false })?.isDirectory()) removeCgroup(p);
  }
  try {
    writeFileSync(path.join(dir, 'cgroup.kill'), '1');
  } catch {}
  for (let i = 0; i < 50; i++) {
    try {
      rmdirSync(dir);
      return true;
    } catch (e) {
      if (e.code !== 'EBUSY') return false;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); // processes are still exiting
    }
  }
  return false;
}

/** Sweeps stale leftovers; returns the paths it removed (and those it could not, prefixed `!`). */
export function sweepStaleLeftovers() {
  const done = [];
  for (const name of entries('/sys/fs/bpf')) {
    if (!stale(name)) continue;
    const p = path.join('/sys/fs/bpf', name);
    try {
      rmSync(p, { recursive: true, force: true });
      done.push(p);
    } catch {
      done.push(`!${p}`);
    }
  }
  for (const root of cgroup2Roots()) {
    for (const name of entries(root)) {
      if (!stale(name)) continue;
      const p = path.join(root, name);
      done.push(removeCgroup(p) ? p : `!${p}`);
    }
  }
  return done;
}
