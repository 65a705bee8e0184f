import { Buffer } from 'node:buffer';
import { closeSync, openSync, readlinkSync, readSync, statSync } from 'node:fs';

/** What /proc says about a process right now. */
export interface ProcFacts {
  /** Kernel start time in clock ticks since boot (stat field 22): with the pid, a unique process key. */
  startTime: string;
  exePath: string | null;
  /** Arguments joined by spaces, unredacted: redact before storing it anywhere. */
  rawCmdline: string;
  containerId: string | null;
}

/**
 * At most `max` bytes of a /proc file. Read by size, not whole: a process controls its own command
 * line (megabytes of arguments), and this runs on the accept path of every new caller.
 */
function read(path: string, max = 16 * 1024, encoding: 'latin1' | 'utf8' = 'latin1'): string | null {
  let fd = -1;
  try {
    fd = openSync(path, 'r');
    const b = Buffer.allocUnsafe(max);
    let n = 0;
    // /proc text files may come in several reads (cmdline crosses pages); stop at max or EOF.
    while (n < max) {
      const got = readSync(fd, b, n, max - n, null);
      if (got === 0) break;
      n += got;
    }
    return b.toString(encoding, 0, n);
  } catch {
    return null;
  } finally {
    if (fd !== -1) closeSync(fd);
  }
}

/** The command name of a thread (or its process when the thread is gone), as /proc reports it now. */
export function currentComm(pid: number, tid: number): string | null {
  const c = (tid > 0 ? read(`/proc/${pid}/task/${tid}/comm`, 64) : null) ?? read(`/proc/${pid}/comm`, 64);
  return c === null ? null : c.replace(/\n$/, '');
}

/** One buffer for the small /proc reads of the accept path (the worker is single-threaded). */
const scratch = Buffer.allocUnsafe(4096);

/** Reads up to 4 KiB of a /proc file into `scratch` with one read; null when it cannot be read. */
function readSmall(path: string): string | null {
  let fd = -1;
  try {
    fd = openSync(path, 'r');
    const n = readSync(fd, scratch, 0, scratch.length, null);
    return scratch.toString('latin1', 0, n);
  } catch {
    return null;
  } finally {
    if (fd !== -1) closeSync(fd);
  }
}

/** Field 22 of /proc/<pid>/stat; the comm field may hold spaces and ')' so parse after the last ')'. */
export function readStartTime(pid: number): string | null {
  const stat = readSmall(`/proc/${pid}/stat`);
  if (stat === null) return null;
  const close = stat.lastIndexOf(')');
  if (close === -1) return null;
  // After ") " come fields 3.. : state is field 3, so start time (22) is index 19.
  let at = close + 2;
  for (let field = 3; field < 22; field++) {
    at = stat.indexOf(' ', at) + 1;
    if (at === 0) return null;
  }
  const end = stat.indexOf(' ', at);
  return end === -1 ? null : stat.slice(at, end);
}

/** The text of /proc/<pid>/exe (the path the process ran, in its own mount namespace); null when gone. */
export function readExeLink(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return null;
  }
}

/** A container id from the cgroup path (docker, containerd, cri-o, podman scopes). */
export function containerIdFromCgroup(cgroup: string): string | null {
  const m =
    /(?:docker|cri-containerd|crio|libpod)[-/]([0-9a-f]{64})/.exec(cgroup) ??
    /\/([0-9a-f]{64})(?:\.scope)?$/m.exec(cgroup);
  return m ? m[1]! : null;
}

/** The file a process runs now (device and inode as stat reports them) and the path, if it names that file. */
export interface ExeIdentity {
  /** null when the path does not name the running file (deleted, replaced, bind-mounted over). */
  path: string | null;
  dev: bigint;
  ino: bigint;
}

/** The executable of a live process; null when the process is gone (or a kernel thread). */
export function readExeIdentity(pid: number): ExeIdentity | null {
  let exe: string;
  let running: { dev: bigint; ino: bigint };
  try {
    exe = readlinkSync(`/proc/${pid}/exe`);
    running = statSync(`/proc/${pid}/exe`, { bigint: true });
  } catch {
    return null;
  }
  // A deleted or replaced binary: the path no longer names what runs.
  if (exe.endsWith(' (deleted)')) return { path: null, dev: running.dev, ino: running.ino };
  // The link text is the path in the caller's mount namespace: a binary bind-mounted over
  // /usr/bin/curl there still reads "/usr/bin/curl". Only trust the path if it names the very
  // file that runs (same device and inode) as seen from the agent's namespace.
  try {
    const named = statSync(exe, { bigint: true });
    const same = running.ino === named.ino && running.dev === named.dev;
    return { path: same ? exe : null, dev: running.dev, ino: running.ino };
  } catch {
    return { path: null, dev: running.dev, ino: running.ino };
  }
}

/** The executable path of a live process; null when unknown (gone, kernel thread, deleted binary). */
export function readExePath(pid: number): string | null {
  return readExeIdentity(pid)?.path ?? null;
}

/** Reads exe, cmdline and cgroup of a live process; null when it is gone. */
export function readProcFacts(pid: number): ProcFacts | null {
  const startTime = readStartTime(pid);
  if (startTime === null) return null;
  const exePath = readExePath(pid);
  return { startTime, exePath, ...readCmdlineAndContainer(pid) };
}

/** The command line (unredacted) and container id of a process; empty/null when unreadable. */
export function readCmdlineAndContainer(pid: number): { rawCmdline: string; containerId: string | null } {
  return { rawCmdline: readRawCmdline(pid), containerId: containerIdFromCgroup(readCgroup(pid)) };
}

/** The arguments of a process joined by spaces (at most 16 KiB read), unredacted; '' when unreadable. */
function readRawCmdline(pid: number): string {
  const raw = read(`/proc/${pid}/cmdline`, 16 * 1024, 'utf8') ?? '';
  return raw.replace(/\0+$/, '').split('\0').join(' ');
}

/** /proc/<pid>/cgroup (at most 4 KiB); '' when unreadable. */
function readCgroup(pid: number): string {
  return read(`/proc/${pid}/cgroup`, 4096) ?? '';
}

/**
 * What /proc says about a process, read once for a caller seen for the first time (the claims'
 * cache miss). The addon reads it (`procSnapshot`, native/src/posix/proc_snapshot.h) through one
 * directory fd on /proc/<pid>, in about half the time node:fs's calls below take.
 */
export interface ProcessSnapshot {
  /** Field 22 of /proc/<pid>/stat: start time in clock ticks since boot. */
  startTime: string;
  /** The running executable as stat(/proc/<pid>/exe) reports it. */
  exeDev: bigint;
  exeIno: bigint;
  /** The exe link's text when it names that very file from the agent's view, else null. */
  exePath: string | null;
  /** Arguments joined by spaces, unredacted (at most 16 KiB read): redact before storing it anywhere. */
  rawCmdline: string;
  /** /proc/<pid>/cgroup (at most 4 KiB). */
  cgroup: string;
  /**
   * True when the reads describe one process running one executable throughout. The addon's reads
   * go through one fd on the process's /proc directory (a pid reused meanwhile makes them fail, not
   * describe the new process) and the executable is checked again after the last read (an exec);
   * node:fs's paths are looked up afresh per read, so here the start time is read again instead.
   */
  stable: boolean;
}

/** Reads a `ProcessSnapshot` of `pid`; null when the process is gone or has no executable. */
export type ProcessSnapshotReader = (pid: number) => ProcessSnapshot | null;

/** The node:fs `ProcessSnapshotReader`, where the addon has none (it is the addon's on Linux). */
export function readProcessSnapshot(pid: number): ProcessSnapshot | null {
  const startTime = readStartTime(pid);
  if (startTime === null) return null;
  const exe = readExeIdentity(pid);
  if (exe === null) return null;
  const rawCmdline = readRawCmdline(pid);
  const cgroup = readCgroup(pid);
  return {
    startTime,
    exeDev: exe.dev,
    exeIno: exe.ino,
    exePath: exe.path,
    rawCmdline,
    cgroup,
    stable: readStartTime(pid) === startTime,
  };
}
