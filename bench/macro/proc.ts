// Reads what the kernel knows about a process: CPU time, resident memory, open descriptors.
// Plain /proc reads so the numbers mean the same for nginx (C) and the agent (Node).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
const PAGE = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim()) || 4096;

/** utime + stime of the whole process (all threads), in seconds; NaN when the process is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may hold spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** Resident set size in bytes; NaN when the process is gone. */
export function rssBytes(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * PAGE;
  } catch {
    return Number.NaN;
  }
}

/**
 * A process's resident memory by kind, MiB (`/proc/<pid>/status`): anonymous (heaps, stacks: its
 * own), file-backed (mapped executables and libraries: clean pages the kernel may drop and read
 * again, shared with any other process that maps the same file) and shared memory. Null when the
 * process is gone.
 */
export function rssParts(pid: number): { anonMiB: number; fileMiB: number; shmemMiB: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
    return { anonMiB: kib('RssAnon') / 1024, fileMiB: kib('RssFile') / 1024, shmemMiB: kib('RssShmem') / 1024 };
  } catch {
    return null;
  }
}

/** Number of open file descriptors; NaN when the process is gone. */
export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

/**
 * What a process costs while it has nothing to do, summed over its threads: CPU time in ns from
 * schedstat (10 ms ticks are too coarse for an idle process) and how many times its threads went
 * to sleep and were woken (voluntary context switches), and the main thread's share of those.
 * Null when /proc does not say.
 */
export function threadActivity(pid: number): { runNs: number; wakeups: number; mainWakeups: number } | null {
  try {
    let runNs = 0;
    let wakeups = 0;
    let mainWakeups = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      runNs += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      const m = /^voluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'));
      const n = m ? Number(m[1]) : 0;
      wakeups += n;
      if (tid === String(pid)) mainWakeups = n;
    }
    return Number.isFinite(runNs) ? { runNs, wakeups, mainWakeups } : null;
  } catch {
    return null; // a thread may exit between the listing and the read; the sample is skipped
  }
}

/** CPU time of each thread of a process, in ns (schedstat), by thread id; empty when it is gone. */
export function threadRunNs(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        out.set(Number(tid), Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
      } catch {
        // the thread exited between the listing and the read
      }
    }
  } catch {
    // the process is gone
  }
  return out;
}

/** Direct children of a process (nginx workers under their master). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Sum of cpuSeconds over a set of processes (a target may be a master and its workers). */
export function totalCpuSeconds(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (cpuSeconds(pid) || 0), 0);
}

/** Sum of RSS over a set of processes, in MiB. */
export function totalRssMiB(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (rssBytes(pid) || 0), 0) / 1048576;
}

export function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}
