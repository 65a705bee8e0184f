/**
 * A throwaway child cgroup for eBPF tests, and a way to run commands inside it as any uid/gid.
 *
 *   const cg = createTestCgroup('attr');          // <cgroup2>/gpa-test-<pid>-attr-<n>
 *   const r = await cg.run('python3', ['x.py'], { uid: 1001, gid: 0 });
 *   await cg.cleanup();                           // kills what is left, removes the cgroup
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { discoverCgroup2Root } from '../../lib/redirector/index.js';

export interface RunAs {
  /** Real and effective uid (setpriv --reuid). */
  uid?: number;
  /** Real and effective gid (setpriv --regid); supplementary groups are cleared. */
  gid?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid: number;
}

export interface TestCgroup {
  /** Absolute path of the cgroup directory (pass as `cgroupPath` to start()). */
  path: string;
  /** Its cgroup id, as bpf_get_current_cgroup_id() reports for processes inside. */
  id: bigint;
  /** Starts `cmd args` inside the cgroup (moved there before exec, so the pid is the command's). */
  spawn(cmd: string, args: string[], opts?: RunAs & { stdio?: SpawnOptions['stdio'] }): ChildProcess;
  /** Runs to completion (killed after timeoutMs, default 30 s) and collects output. */
  run(cmd: string, args: string[], opts?: RunAs & { timeoutMs?: number; input?: string }): Promise<RunResult>;
  /** Pids currently in the cgroup. */
  pids(): number[];
  /** Kills remaining processes and removes the cgroup (and any child cgroups). Idempotent. */
  cleanup(): Promise<void>;
}

let counter = 0;

/** The cgroup v2 mount; throws when there is none. */
export function cgroup2Root(): string {
  const root = discoverCgroup2Root();
  if (!root) throw new Error('no cgroup v2 mount found in /proc/self/mountinfo');
  return root;
}

/** Creates `<cgroup2>/gpa-test-<pid>-<label>-<n>`. */
export function createTestCgroup(label: string): TestCgroup {
  const dir = path.join(cgroup2Root(), `gpa-test-${process.pid}-${label}-${++counter}`);
  mkdirSync(dir);
  const live = new Set<ChildProcess>();

  const spawnIn = (cmd: string, args: string[], opts: RunAs & { stdio?: SpawnOptions['stdio'] } = {}) => {
    const priv: string[] = [];
    if (opts.uid !== undefined) priv.push(`--reuid=${opts.uid}`);
    if (opts.gid !== undefined) priv.push(`--regid=${opts.gid}`, '--clear-groups');
    const exec = priv.length ? ['setpriv', ...priv, cmd, ...args] : [cmd, ...args];
    const child = spawn('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', dir, ...exec], {
      stdio: opts.stdio ?? ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    live.add(child);
    child.once('exit', () => live.delete(child));
    return child;
  };

  const pids = () => {
    try {
      return readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };

  return {
    path: dir,
    id: statSync(dir, { bigint: true }).ino,
    spawn: spawnIn,
    pids,
    async run(cmd, args, opts = {}) {
      const child = spawnIn(cmd, args, opts);
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (d) => {
        stdout += d;
      });
      child.stderr?.on('data', (d) => {
        stderr += d;
      });
      if (opts.input !== undefined) child.stdin?.end(opts.input);
      else child.stdin?.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
      // 'close', not 'exit': a process can exit before its stdout has been read to the end, and
      // a result read at 'exit' then lacks the output (a python client's JSON line went missing so).
      const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
      clearTimeout(timer);
      return { code, signal, stdout, stderr, pid: child.pid ?? 0 };
    },
    async cleanup() {
      for (const c of live) c.kill('SIGKILL');
      await removeTree(dir);
    },
  };
}

// Kill every process in the subtree (cgroup.kill), then rmdir bottom-up; retries while pids exit.
async function removeTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) await removeTree(path.join(dir, e.name));
  }
  try {
    writeFileSync(path.join(dir, 'cgroup.kill'), '1');
  } catch {
    // cgroup.kill needs Linux 5.14; processes we spawned were killed above anyway
  }
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      if (Date.now() > deadline) throw err;
      await sleep(20);
    }
  }
}
