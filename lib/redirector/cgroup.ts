/** cgroup v2 discovery and the process facts exemption needs (pid namespace, own cgroup). */
import { existsSync, readFileSync, statfsSync, statSync } from 'node:fs';
import path from 'node:path';

/** statfs f_type of a cgroup v2 mount (CGROUP2_SUPER_MAGIC). */
export const CGROUP2_SUPER_MAGIC = 0x63677270;

export interface Cgroup2Mount {
  mountPoint: string;
  /** The mount's root inside the hierarchy ('/' for the real root). */
  root: string;
}

/** Parses /proc/self/mountinfo text into its cgroup2 mounts (pure; tested without root). */
export function parseCgroup2Mounts(mountinfo: string): Cgroup2Mount[] {
  const out: Cgroup2Mount[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fsType = line.slice(sep + 3).split(' ')[0];
    if (fsType !== 'cgroup2') continue;
    const fields = line.slice(0, sep).split(' ');
    const root = fields[3];
    const mountPoint = fields[4];
    if (root === undefined || mountPoint === undefined) continue;
    out.push({ root: unescapeMountField(root), mountPoint: unescapeMountField(mountPoint) });
  }
  // The mount of the hierarchy's root first: that is the directory covering every process.
  return out.sort((a, b) => Number(b.root === '/') - Number(a.root === '/'));
}

function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/** True when `dir` is on a cgroup v2 filesystem. */
export function isCgroup2Dir(dir: string): boolean {
  try {
    return statfsSync(dir).type === CGROUP2_SUPER_MAGIC && statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** The cgroup v2 mount point to attach to by default, or undefined when there is none. */
export function discoverCgroup2Root(mountinfo?: string): string | undefined {
  let text = mountinfo;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/mountinfo', 'utf8');
    } catch {
      return undefined;
    }
  }
  for (const m of parseCgroup2Mounts(text)) {
    if (isCgroup2Dir(m.mountPoint)) return m.mountPoint;
  }
  return undefined;
}

/** This process's cgroup v2 path relative to the hierarchy root ("0::/x" in /proc/self/cgroup). */
export function ownCgroupRelPath(): string | undefined {
  try {
    const line = readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    return line?.slice(3);
  } catch {
    return undefined;
  }
}

/** True when `NSpid` lists more than one pid: our kernel tgid differs from process.pid. */
export function inPidNamespace(statusText?: string): boolean {
  const text = statusText ?? readFileSync('/proc/self/status', 'utf8');
  const line = text.split('\n').find((l) => l.startsWith('NSpid:'));
  if (!line) return false;
  return line.slice(6).trim().split(/\s+/).length > 1;
}

/** The cgroup id (inode number) of a cgroup v2 directory. */
export function cgroupId(dir: string): bigint {
  return statSync(dir, { bigint: true }).ino;
}

/** Absolute path of this process's cgroup under a cgroup v2 mount, if it exists there. */
export function ownCgroupDir(mountPoint: string): string | undefined {
  const rel = ownCgroupRelPath();
  if (rel === undefined) return undefined;
  const dir = path.join(mountPoint, rel);
  return existsSync(dir) ? dir : undefined;
}
