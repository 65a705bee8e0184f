// The child cgroup the agent's redirect is attached to; the agent case's clients run inside it.
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Mount point of the cgroup v2 hierarchy (on hybrid hosts often /sys/fs/cgroup/unified). */
export function cgroup2Root(): string {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const found: { root: string; mountPoint: string }[] = [];
  for (const line of mounts) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post?.startsWith('cgroup2 ')) continue;
    const f = pre.split(' ');
    found.push({ root: f[3]!, mountPoint: f[4]! });
  }
  const best = found.find((m) => m.root === '/') ?? found[0];
  if (!best)
    throw new Error(
      'no cgroup v2 hierarchy is mounted; the agent case needs one (mount -t cgroup2 none /sys/fs/cgroup)',
    );
  return best.mountPoint;
}

export interface BenchCgroup {
  path: string;
  procs: string;
  remove(): void;
}

export function createBenchCgroup(): BenchCgroup {
  const dir = path.join(cgroup2Root(), `gpa-bench-${process.pid}`);
  mkdirSync(dir);
  return {
    path: dir,
    procs: path.join(dir, 'cgroup.procs'),
    remove() {
      // Clients (wrk, curl) have usually exited by now; retry briefly while the kernel finishes
      // reaping. One still running (the bench was interrupted mid-round) is killed after 1 s
      // (cgroup.kill, Linux 5.14+), so an interrupted run leaves no cgroup behind.
      for (let i = 0; i < 50; i++) {
        try {
          rmdirSync(dir);
          return;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
          if (i === 10) killMembers(dir);
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
        }
      }
      rmdirSync(dir);
    },
  };
}

/** Kills every process left in the cgroup; best effort (older kernels have no cgroup.kill). */
function killMembers(dir: string): void {
  try {
    writeFileSync(path.join(dir, 'cgroup.kill'), '1');
  } catch {
    // nothing more to do: the caller's rmdir reports the cgroup as busy
  }
}
