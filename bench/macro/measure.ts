// The measurement loop: for each scenario, rounds of direct, nginx, agent, direct, nginx, agent...
// so that drift (thermal, other load, page cache) hits every target alike; medians across rounds.
import { median, threadRunNs, totalCpuSeconds, totalRssMiB } from './proc.js';
import { describe, PATHS, type Scenario } from './scenarios.js';
import type { Target, TargetName } from './target.js';
import { errorCount, runWrk, type WrkResult } from './wrk.js';

export interface RoundResult extends WrkResult {
  round: number;
  /** CPU time the target's processes used per request, in µs. */
  targetCpuUsPerReq: number;
  /** Largest RSS of the target's processes seen during the run, MiB. */
  targetRssMiBMax: number;
  /** The host emulator behind the target: CPU µs per request, and its busiest thread's share of a core. */
  hostCpuUsPerReq?: number;
  hostThreadShare?: number;
}

export interface Summary {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  rps: number;
  cpuUsPerReq: number;
  rssMiBMax: number;
  /** Host emulator CPU µs per request and busiest-thread share of a core (medians). */
  hostCpuUsPerReq?: number;
  hostThreadShare?: number;
  errors: number;
  loadgenCpuShare: number;
}

export interface TargetStats {
  median: Summary;
  rounds: RoundResult[];
}

export interface ScenarioResult extends Scenario {
  url: string;
  targets: Partial<Record<TargetName, TargetStats>>;
}

export interface MeasureOptions {
  rounds: number;
  durationSec: number;
  warmupSec: number;
  reporter: string;
  log: (line: string) => void;
}

async function once(
  t: Target,
  s: Scenario,
  durationSec: number,
  reporter: string,
  round: number,
): Promise<RoundResult> {
  const pids = t.pids();
  let rssMax = totalRssMiB(pids);
  const cpu0 = totalCpuSeconds(pids);
  const host0 = t.hostPid !== undefined ? threadRunNs(t.hostPid) : null;
  const r = await runWrk(
    {
      url: t.base + PATHS[s.path],
      clients: s.clients,
      keepAlive: s.keepAlive,
      durationSec,
      ...(t.clientCgroupProcs ? { cgroupProcs: t.clientCgroupProcs } : {}),
      onTick: () => (rssMax = Math.max(rssMax, totalRssMiB(pids))),
    },
    reporter,
  );
  const cpu = totalCpuSeconds(pids) - cpu0;
  const host = host0 !== null ? hostUse(host0, threadRunNs(t.hostPid!), r.requests, r.durationSec) : {};
  return { ...r, round, targetCpuUsPerReq: (cpu * 1e6) / Math.max(1, r.requests), targetRssMiBMax: rssMax, ...host };
}

/** The host's CPU per request and its busiest thread's share of a core over the run. */
function hostUse(
  before: Map<number, number>,
  after: Map<number, number>,
  requests: number,
  durationSec: number,
): { hostCpuUsPerReq?: number; hostThreadShare?: number } {
  if (after.size === 0 || durationSec <= 0) return {};
  let totalNs = 0;
  let busiestNs = 0;
  for (const [tid, ns] of after) {
    const d = ns - (before.get(tid) ?? 0);
    totalNs += d;
    busiestNs = Math.max(busiestNs, d);
  }
  return { hostCpuUsPerReq: totalNs / 1000 / Math.max(1, requests), hostThreadShare: busiestNs / 1e9 / durationSec };
}

function summarize(rounds: RoundResult[]): Summary {
  const m = (f: (r: RoundResult) => number) => median(rounds.map(f));
  return {
    p50: m((r) => r.latencyUs.p50),
    p90: m((r) => r.latencyUs.p90),
    p99: m((r) => r.latencyUs.p99),
    p999: m((r) => r.latencyUs.p999),
    max: Math.max(...rounds.map((r) => r.latencyUs.max)),
    rps: m((r) => r.rps),
    cpuUsPerReq: m((r) => r.targetCpuUsPerReq),
    rssMiBMax: Math.max(...rounds.map((r) => r.targetRssMiBMax)),
    ...(rounds.every((r) => r.hostCpuUsPerReq !== undefined)
      ? { hostCpuUsPerReq: m((r) => r.hostCpuUsPerReq!), hostThreadShare: m((r) => r.hostThreadShare!) }
      : {}),
    errors: rounds.reduce((n, r) => n + errorCount(r), 0),
    loadgenCpuShare: Math.max(...rounds.map((r) => r.loadgenCpuShare)),
  };
}

export async function measureScenario(targets: Target[], s: Scenario, o: MeasureOptions): Promise<ScenarioResult> {
  o.log(`${describe(s)}: warm-up ${o.warmupSec}s per target`);
  for (const t of targets) await once(t, s, o.warmupSec, o.reporter, -1);
  const rounds = new Map<TargetName, RoundResult[]>(targets.map((t) => [t.name, []]));
  for (let round = 0; round < o.rounds; round++) {
    for (const t of targets) {
      const r = await once(t, s, o.durationSec, o.reporter, round);
      rounds.get(t.name)!.push(r);
      const errs = errorCount(r);
      o.log(
        `  round ${round + 1}/${o.rounds} ${t.name.padEnd(6)} p50 ${r.latencyUs.p50} µs  p99 ${r.latencyUs.p99} µs  ` +
          `${Math.round(r.rps)} req/s  cpu ${r.targetCpuUsPerReq.toFixed(1)} µs/req  wrk ${Math.round(r.loadgenCpuShare * 100)}%` +
          (r.hostThreadShare !== undefined
            ? `  host ${r.hostCpuUsPerReq!.toFixed(1)} µs/req, busiest thread ${Math.round(r.hostThreadShare * 100)}%`
            : '') +
          `${errs ? `  ERRORS ${errs}` : ''}`,
      );
    }
  }
  const out: ScenarioResult = { ...s, url: PATHS[s.path], targets: {} };
  for (const [name, rs] of rounds) out.targets[name] = { median: summarize(rs), rounds: rs };
  return out;
}
