import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Where a running demo records its sandbox so `gpa exec` can enter it. */
export const DEMO_STATE_FILE = '/run/gpa-demo/state.json';

export interface DemoSandbox {
  /** Network namespace with only `lo` (carrying the metadata addresses) and no routes out. */
  netns: string;
  /** cgroup v2 directory the redirect is attached to; every demo process runs inside it. */
  cgroup: string;
  /** bpffs folder of the demo agent's pinned links and maps. */
  pinDir: string;
  /** Temp folder holding config, logs and keys. */
  stateDir: string;
  /** pid of the `gpa demo` process that owns the sandbox. */
  ownerPid: number;
  listenerPort: number;
  metricsPort: number;
}

function ip(args: string[]): { ok: boolean; out: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/**
 * Creates the sealed network namespace: bring up `lo`, put 169.254.169.254/32 and 168.63.129.16/32
 * on it, and then check that `lo` is the only link and there is no route other than loopback's, so
 * nothing sent to a metadata address inside can leave the machine.
 */
export function createSealedNetns(name: string): void {
  const steps = [
    ['netns', 'add', name],
    ['-n', name, 'link', 'set', 'lo', 'up'],
    ['-n', name, 'addr', 'add', '169.254.169.254/32', 'dev', 'lo'],
    ['-n', name, 'addr', 'add', '168.63.129.16/32', 'dev', 'lo'],
  ];
  for (const s of steps) {
    const r = ip(s);
    if (!r.ok) throw new Error(`'ip ${s.join(' ')}' failed: ${r.out.trim()}`);
  }
  const links = ip(['-n', name, '-o', 'link', 'show']).out.trim().split('\n');
  const routes = ip(['-n', name, '-4', 'route', 'show', 'table', 'all']).out;
  if (links.length !== 1 || !/\blo\b/.test(links[0]!))
    throw new Error(`netns ${name} is not sealed: links ${links.join(' | ')}`);
  if (/^default|via /m.test(routes)) throw new Error(`netns ${name} has a route out: ${routes}`);
}

/** Deletes the namespace (its processes must be gone first). */
export function deleteNetns(name: string): void {
  ip(['netns', 'del', name]);
}

/** Creates a child cgroup of the cgroup v2 root. */
export function createCgroup(root: string, name: string): string {
  const dir = path.join(root, name);
  mkdirSync(dir);
  return dir;
}

/** Kills whatever is left in a cgroup (cgroup.kill where the kernel has it, else each pid) and removes it. */
export function destroyCgroup(dir: string): void {
  if (!existsSync(dir)) return;
  try {
    writeFileSync(path.join(dir, 'cgroup.kill'), '1');
  } catch {
    for (const pid of readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  for (let i = 0; i < 50; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch {
      spawnSync('sleep', ['0.05']);
    }
  }
}

export function writeDemoState(s: DemoSandbox, file = DEMO_STATE_FILE): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  writeFileSync(file, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o644 });
}

/** The running demo's sandbox, or null when there is none (or its owner died). */
export function readDemoState(file = DEMO_STATE_FILE): DemoSandbox | null {
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as DemoSandbox;
    process.kill(s.ownerPid, 0);
    return s;
  } catch {
    return null;
  }
}

export function removeDemoState(file = DEMO_STATE_FILE): void {
  rmSync(file, { force: true });
  try {
    rmdirSync(path.dirname(file));
  } catch {
    // not empty or already gone
  }
}

/**
 * Prefix that runs a command in the named network namespace only. Not `ip netns exec`: that also
 * unshares the mount namespace and remounts /sys, which hides the cgroup v2 mount and bpffs the
 * agent needs.
 */
export function inNetns(netns: string): string[] {
  return ['nsenter', `--net=/run/netns/${netns}`, '--'];
}

/**
 * argv that runs `cmd` inside the sandbox: first join the cgroup (so the redirect applies), then enter
 * the netns, then drop to the chosen user. `sh` writes its own pid to cgroup.procs before exec'ing,
 * so the command is in the cgroup from its first instruction.
 */
export function sandboxArgv(
  s: Pick<DemoSandbox, 'netns' | 'cgroup'>,
  user: { uid: number; gid: number; name: string | null } | null,
  cmd: string[],
): string[] {
  const drop = user
    ? [
        'setpriv',
        `--reuid=${user.uid}`,
        `--regid=${user.gid}`,
        ...(user.name ? ['--init-groups'] : ['--clear-groups']),
        '--',
      ]
    : [];
  return [
    'sh',
    '-c',
    'echo $$ > "$0/cgroup.procs" && shift && exec "$@"',
    s.cgroup,
    'x',
    ...inNetns(s.netns),
    ...drop,
    ...cmd,
  ];
}
