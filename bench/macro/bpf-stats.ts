// The cost of our BPF programs per run, from the kernel's own statistics: with
// kernel.bpf_stats_enabled=1 the kernel times every program run (run_time_ns, run_cnt in
// `bpftool prog show`). The sysctl is restored afterwards; while on it adds two clock reads per run
// of every BPF program on the machine, so the reported ns/run include that small overhead.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

export interface ProgStat {
  id: number;
  name: string;
  type: string;
  attachType: string;
  runCnt: number;
  runTimeNs: number;
  nsPerRun: number;
}

export interface BpfStats {
  read(): { programs: ProgStat[]; note: string };
  restore(): void;
}

interface CgroupEntry {
  id: number;
  attach_type: string;
  name?: string;
}
interface ProgShow {
  id: number;
  type: string;
  name?: string;
  run_time_ns?: number;
  run_cnt?: number;
}

function bpftool<T>(args: string[]): T {
  return JSON.parse(execFileSync('bpftool', ['-j', ...args], { encoding: 'utf8' })) as T;
}

function attached(cgroupPath: string): CgroupEntry[] {
  return bpftool<CgroupEntry[]>(['cgroup', 'show', cgroupPath]);
}

function counters(id: number): { type: string; name: string; runCnt: number; runTimeNs: number } {
  const p = bpftool<ProgShow>(['prog', 'show', 'id', String(id)]);
  return { type: p.type, name: p.name ?? `prog${id}`, runCnt: p.run_cnt ?? 0, runTimeNs: p.run_time_ns ?? 0 };
}

/** Turns statistics on and snapshots the programs attached to cgroupPath. */
export async function startBpfStats(cgroupPath: string, log: (s: string) => void): Promise<BpfStats | undefined> {
  let previous: string;
  try {
    previous = readFileSync(SYSCTL, 'utf8').trim();
    writeFileSync(SYSCTL, '1');
  } catch (e) {
    log(`BPF run-time statistics unavailable (${(e as Error).message}); eBPF cost not measured`);
    return undefined;
  }
  const restore = () => writeFileSync(SYSCTL, previous);
  let progs: CgroupEntry[];
  try {
    progs = attached(cgroupPath);
  } catch (e) {
    restore();
    log(`bpftool cgroup show ${cgroupPath} failed (${(e as Error).message}); eBPF cost not measured`);
    return undefined;
  }
  if (progs.length === 0) log(`no BPF programs attached to ${cgroupPath}: is the redirect on?`);
  const base = new Map(progs.map((p) => [p.id, counters(p.id)]));
  return {
    restore,
    read() {
      const programs = progs.map((p) => {
        const now = counters(p.id);
        const b = base.get(p.id)!;
        const runCnt = now.runCnt - b.runCnt;
        const runTimeNs = now.runTimeNs - b.runTimeNs;
        return {
          id: p.id,
          name: now.name,
          type: now.type,
          attachType: p.attach_type,
          runCnt,
          runTimeNs,
          nsPerRun: runCnt ? runTimeNs / runCnt : 0,
        };
      });
      return {
        programs,
        note: 'kernel.bpf_stats_enabled=1 during the run; deltas over the measured rounds; sockops runs several times per connection',
      };
    },
  };
}
