// Turns medians into what a reader asks: how much latency does each hop add over the floor, and how
// does the agent compare with nginx. Ratios from one run are the comparable numbers; absolute
// microseconds vary between machines and runs.
import type { RoundResult, ScenarioResult, Summary } from './measure.js';
import { median } from './proc.js';
import { describe } from './scenarios.js';
import type { TargetName } from './target.js';

export interface Comparison {
  id: string;
  /** Target minus direct, µs (median over rounds of the per-round difference). */
  added: Partial<Record<'nginx' | 'agent', { p50: number; p99: number }>>;
  /** agent added / nginx added, agent throughput / nginx throughput, agent / nginx latency. */
  agentVsNginx?: {
    addedP50: number;
    addedP99: number;
    throughput: number;
    p50: number;
    p99: number;
    /**
     * How far the three goal ratios move with the rounds: their 10th and 90th percentiles when the
     * rounds are resampled (see `roundsInterval`); null where too few resamples give a ratio.
     */
    spread: Record<'addedP50' | 'addedP99' | 'throughput', [number, number] | null>;
  };
}

/**
 * Added latency is paired: for each round, target minus the direct run of the same round (they ran
 * seconds apart), then the median over rounds. On a shared machine that cancels drift better than
 * subtracting two medians.
 */
function pairedAdded(s: ScenarioResult, name: 'nginx' | 'agent', f: (r: RoundResult) => number): number {
  return median(pairedDiffs(s, name, f));
}

/** Per round: the target's value minus the direct run's of the same round (NaN without one). */
function pairedDiffs(s: ScenarioResult, name: 'nginx' | 'agent', f: (r: RoundResult) => number): number[] {
  const d = s.targets.direct?.rounds ?? [];
  const t = s.targets[name]?.rounds ?? [];
  return t.map((r, i) => (d[i] ? f(r) - f(d[i]!) : Number.NaN));
}

/** The share of resamples left out below and above the interval `roundsInterval` reports. */
const INTERVAL_TAIL = 0.1;
const RESAMPLES = 2000;

/**
 * How much a statistic of the rounds depends on which rounds ran: it is recomputed on `RESAMPLES`
 * resamples of the round indices (drawn with replacement; one index picks that round of every
 * target, as they ran side by side), and the 10th and 90th percentiles of the results are returned.
 * A bootstrap over 8 rounds is rough, but it shows when a ratio's side of a goal is down to a round
 * or two. The generator is seeded: the same rounds give the same interval. Null when fewer than
 * half of the resamples give a finite value (an added latency at or below zero makes no ratio).
 */
export function roundsInterval(rounds: number, stat: (indices: number[]) => number): [number, number] | null {
  if (rounds < 2) return null;
  let seed = 0x9e3779b9;
  const random = (): number => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const values: number[] = [];
  const indices = new Array<number>(rounds);
  for (let k = 0; k < RESAMPLES; k++) {
    for (let i = 0; i < rounds; i++) indices[i] = Math.floor(random() * rounds);
    const v = stat(indices);
    if (Number.isFinite(v)) values.push(v);
  }
  if (values.length < RESAMPLES / 2) return null;
  values.sort((a, b) => a - b);
  const at = (q: number) => values[Math.min(values.length - 1, Math.floor(q * values.length))]!;
  const round2 = (x: number) => Math.round(x * 100) / 100;
  return [round2(at(INTERVAL_TAIL)), round2(at(1 - INTERVAL_TAIL))];
}

/** The spread of the agent/nginx goal ratios over resampled rounds (see `roundsInterval`). */
function ratioSpread(s: ScenarioResult): NonNullable<Comparison['agentVsNginx']>['spread'] {
  const pick = (v: number[], idx: number[]) => idx.map((i) => v[i]!);
  const addedRatio = (f: (r: RoundResult) => number) => {
    const a = pairedDiffs(s, 'agent', f);
    const n = pairedDiffs(s, 'nginx', f);
    return (idx: number[]) => exactRatio(median(pick(a, idx)), median(pick(n, idx)));
  };
  const rounds = Math.min(s.targets.agent?.rounds.length ?? 0, s.targets.nginx?.rounds.length ?? 0);
  const aRps = (s.targets.agent?.rounds ?? []).map((r) => r.rps);
  const nRps = (s.targets.nginx?.rounds ?? []).map((r) => r.rps);
  return {
    addedP50: roundsInterval(
      rounds,
      addedRatio((r) => r.latencyUs.p50),
    ),
    addedP99: roundsInterval(
      rounds,
      addedRatio((r) => r.latencyUs.p99),
    ),
    throughput: roundsInterval(rounds, (idx) => exactRatio(median(pick(aRps, idx)), median(pick(nRps, idx)))),
  };
}

export function compare(s: ScenarioResult): Comparison {
  const out: Comparison = { id: s.id, added: {} };
  if (!s.targets.direct) return out;
  for (const name of ['nginx', 'agent'] as const) {
    if (s.targets[name]) {
      out.added[name] = {
        p50: pairedAdded(s, name, (r) => r.latencyUs.p50),
        p99: pairedAdded(s, name, (r) => r.latencyUs.p99),
      };
    }
  }
  const n = s.targets.nginx?.median;
  const a = s.targets.agent?.median;
  if (n && a && out.added.nginx && out.added.agent) {
    out.agentVsNginx = {
      addedP50: ratio(out.added.agent.p50, out.added.nginx.p50),
      addedP99: ratio(out.added.agent.p99, out.added.nginx.p99),
      throughput: ratio(a.rps, n.rps),
      // Whole-latency ratios: meaningful even where nginx adds nothing over the floor (new
      // connections: its pooled upstream connections spare the emulator an accept per request).
      p50: ratio(a.p50, n.p50),
      p99: ratio(a.p99, n.p99),
      spread: ratioSpread(s),
    };
  }
  return out;
}

/** a / b, NaN unless b > 0: an added latency at or below zero (within noise of the floor) makes no ratio. */
function exactRatio(a: number, b: number): number {
  return b > 0 ? a / b : Number.NaN;
}

/** exactRatio to two decimals, as reported. */
function ratio(a: number, b: number): number {
  return Math.round(exactRatio(a, b) * 100) / 100;
}

export interface Goal {
  goal: string;
  value: number | null;
  limit: string;
  met: boolean | null;
  /** The ratio's spread over resampled rounds (10th-90th percentile), where it is a ratio. */
  spread?: [number, number] | null;
  note?: string;
}

export function goals(
  results: ScenarioResult[],
  comps: Comparison[],
  agentIdleRssMiB: number | null,
  ebpfMaxNs: number | null,
): Goal[] {
  const find = (path: string, ka: boolean, c: number) =>
    comps[results.findIndex((r) => r.path === path && r.keepAlive === ka && r.clients === c)]?.agentVsNginx;
  const g: Goal[] = [];
  const add = (
    goal: string,
    value: number | undefined | null,
    limit: number,
    atMost: boolean,
    spread?: [number, number] | null,
  ) => {
    const v = value === undefined || value === null || Number.isNaN(value) ? null : value;
    g.push({
      goal,
      value: v,
      limit: `${atMost ? '<=' : '>='} ${limit}`,
      met: v === null ? null : atMost ? v <= limit : v >= limit,
      ...(spread !== undefined ? { spread } : {}),
    });
  };
  const ka1 = find('instance', true, 1);
  add('keep-alive 1 client: agent/nginx added p50 (instance)', ka1?.addedP50, 1.5, true, ka1?.spread.addedP50);
  add('keep-alive 1 client: agent/nginx added p99 (instance)', ka1?.addedP99, 2, true, ka1?.spread.addedP99);
  const nc1 = find('instance', false, 1);
  add('new conn 1 client: agent/nginx added p50 (instance)', nc1?.addedP50, 1.5, true, nc1?.spread.addedP50);
  if (nc1 && Number.isNaN(nc1.addedP50)) {
    g[g.length - 1]!.note = `nginx adds nothing over the floor here; whole p50 agent/nginx = ${nc1.p50}`;
  }
  const ka32 = find('instance', true, 32);
  add(
    'keep-alive 32 clients: agent/nginx throughput (instance)',
    ka32?.throughput,
    0.75,
    false,
    ka32?.spread.throughput,
  );
  add('agent RSS at idle, MiB', agentIdleRssMiB, 80, true);
  add('eBPF ns per program run (worst program)', ebpfMaxNs, 1000, true);
  return g;
}

const fmt = (v: number | undefined, digits = 0) => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(digits));

export function table(results: ScenarioResult[], comps: Comparison[]): string {
  const lines: string[] = [];
  const head = [
    'target',
    'p50',
    'p90',
    'p99',
    'p99.9',
    'max',
    'req/s',
    'cpu/req',
    '+p50',
    '+p99',
    'errors',
    'host/req',
    'host thr',
  ];
  const w = [7, 7, 7, 7, 7, 7, 8, 8, 7, 7, 6, 9, 9];
  const row = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join(' ');
  lines.push(
    'latency in µs (medians across rounds; max is the worst round); cpu/req = target CPU µs per request;\n' +
      "+p50/+p99 = added over direct, median of per-round differences; host/req = the host emulator's CPU µs\n" +
      "per request, host thr = its busiest thread's share of a core (near 100%: the host limits throughput)",
  );
  results.forEach((s, i) => {
    const c = comps[i]!;
    lines.push('', `${describe(s)}   ${s.url}`, row(head));
    for (const name of ['direct', 'nginx', 'agent'] as TargetName[]) {
      const m: Summary | undefined = s.targets[name]?.median;
      if (!m) continue;
      const add = name === 'direct' ? undefined : c.added[name];
      lines.push(
        row([
          name,
          fmt(m.p50),
          fmt(m.p90),
          fmt(m.p99),
          fmt(m.p999),
          fmt(m.max),
          fmt(m.rps),
          fmt(m.cpuUsPerReq, 1),
          add ? fmt(add.p50) : '',
          add ? fmt(add.p99) : '',
          String(m.errors),
          fmt(m.hostCpuUsPerReq, 1),
          m.hostThreadShare === undefined ? '-' : `${fmt(m.hostThreadShare * 100)}%`,
        ]),
      );
    }
    const r = c.agentVsNginx;
    if (r) {
      lines.push(
        `agent/nginx: added p50 ${fmt(r.addedP50, 2)}x${spreadText(r.spread.addedP50)}   added p99 ${fmt(r.addedP99, 2)}x${spreadText(r.spread.addedP99)}` +
          `   throughput ${fmt(r.throughput, 2)}x${spreadText(r.spread.throughput)}   (whole latency p50 ${fmt(r.p50, 2)}x, p99 ${fmt(r.p99, 2)}x)`,
      );
    }
  });
  lines.push(
    '',
    '[a-b] after a ratio: its 10th-90th percentile when the rounds are resampled (how much it rests on a few rounds)',
  );
  return lines.join('\n');
}

const spreadText = (s: [number, number] | null | undefined) => (s ? ` [${s[0].toFixed(2)}-${s[1].toFixed(2)}]` : '');

export function goalTable(g: Goal[]): string {
  return g
    .map(
      (x) =>
        `${x.met === null ? ' n/a' : x.met ? '  ok' : 'MISS'}  ${x.goal}: ${x.value ?? '-'}${spreadText(x.spread)} (goal ${x.limit})` +
        (x.note ? `; ${x.note}` : ''),
    )
    .join('\n');
}
