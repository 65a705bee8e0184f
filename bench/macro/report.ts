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
  agentVsNginx?: { addedP50: number; addedP99: number; throughput: number; p50: number; p99: number };
}

/**
 * Added latency is paired: for each round, target minus the direct run of the same round (they ran
 * seconds apart), then the median over rounds. On a shared machine that cancels drift better than
 * subtracting two medians.
 */
function pairedAdded(s: ScenarioResult, name: 'nginx' | 'agent', f: (r: RoundResult) => number): number {
  const d = s.targets.direct?.rounds ?? [];
  const t = s.targets[name]?.rounds ?? [];
  const diffs = t.map((r, i) => (d[i] ? f(r) - f(d[i]!) : Number.NaN));
  return median(diffs);
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
    };
  }
  return out;
}

function ratio(a: number, b: number): number {
  // An added latency at or below zero (within noise of the floor) makes a ratio meaningless.
  return b > 0 ? Math.round((a / b) * 100) / 100 : Number.NaN;
}

export interface Goal {
  goal: string;
  value: number | null;
  limit: string;
  met: boolean | null;
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
  const add = (goal: string, value: number | undefined | null, limit: number, atMost: boolean) => {
    const v = value === undefined || value === null || Number.isNaN(value) ? null : value;
    g.push({
      goal,
      value: v,
      limit: `${atMost ? '<=' : '>='} ${limit}`,
      met: v === null ? null : atMost ? v <= limit : v >= limit,
    });
  };
  add('keep-alive 1 client: agent/nginx added p50 (instance)', find('instance', true, 1)?.addedP50, 1.5, true);
  add('keep-alive 1 client: agent/nginx added p99 (instance)', find('instance', true, 1)?.addedP99, 2, true);
  const nc1 = find('instance', false, 1);
  add('new conn 1 client: agent/nginx added p50 (instance)', nc1?.addedP50, 1.5, true);
  if (nc1 && Number.isNaN(nc1.addedP50)) {
    g[g.length - 1]!.note = `nginx adds nothing over the floor here; whole p50 agent/nginx = ${nc1.p50}`;
  }
  add('keep-alive 32 clients: agent/nginx throughput (instance)', find('instance', true, 32)?.throughput, 0.75, false);
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
        `agent/nginx: added p50 ${fmt(r.addedP50, 2)}x   added p99 ${fmt(r.addedP99, 2)}x   throughput ${fmt(r.throughput, 2)}x` +
          `   (whole latency p50 ${fmt(r.p50, 2)}x, p99 ${fmt(r.p99, 2)}x)`,
      );
    }
  });
  return lines.join('\n');
}

export function goalTable(g: Goal[]): string {
  return g
    .map(
      (x) =>
        `${x.met === null ? ' n/a' : x.met ? '  ok' : 'MISS'}  ${x.goal}: ${x.value ?? '-'} (goal ${x.limit})` +
        (x.note ? `; ${x.note}` : ''),
    )
    .join('\n');
}
