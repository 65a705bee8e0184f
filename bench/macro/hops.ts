// Where one request's latency goes, hop by hop (`npm run bench -- --hops`): one client, a kernel
// trace (perf: every syscall entry and exit) of the load generator, the proxy and the host while
// wrk runs, then per request the time between the events that mark each hop (a wake-up is a wait
// syscall returning with events). Each hop's median is printed per target, so the agent's own work (wake-up to upstream
// write, wake-up to client write) stands beside nginx's, and the host's work behind each beside
// the other; beside each median, the hop's mean over the slowest 1% of requests shows where a tail
// request's extra time goes. Tracing every syscall adds about a microsecond to each, alike for every target: read
// the hops against each other, not against the ratios of an untraced run.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { RESULTS_DIR, resultBaseName } from './output.js';
import { childPids, median, threadRunNs } from './proc.js';
import { PATHS, type Scenario } from './scenarios.js';
import type { Target, TargetName } from './target.js';
import { wrkCommand } from './wrk.js';

/** Who an event belongs to: the load generator, the proxy (nginx or the agent), the host emulator. */
export type Role = 'client' | 'proxy' | 'host';

export interface TraceEvent {
  tUs: number;
  role: Role;
  /** A syscall's entry or exit. */
  kind: 'enter' | 'exit';
  nr: number;
  /** The return value (exits only). */
  ret: number;
}

// x86-64 syscall numbers: the ones that mark a hop.
const WRITES = new Set([1, 20, 44, 46]); // write, writev, sendto, sendmsg
const WAITS = new Set([7, 232, 281, 441]); // poll, epoll_wait, epoll_pwait, epoll_pwait2
const CLIENT_WRITE = new Set([1]); // wrk sends each request with write()

/** The hops of one request through a proxy (direct: the client-side and host hops only). */
export const PROXY_HOPS = [
  'client write → proxy wakes',
  'proxy: wake → upstream write',
  'proxy: upstream write syscall',
  'upstream write → host wakes',
  'host: wake → response write',
  'host response → proxy wakes',
  'proxy: wake → client write',
  'proxy: client write syscall',
  'client write → client wakes',
] as const;
export const DIRECT_HOPS = [
  'client write → host wakes',
  'host: wake → response write',
  'host response → client wakes',
] as const;
export type Hop = (typeof PROXY_HOPS)[number] | (typeof DIRECT_HOPS)[number];

const LINE = /^\s*(\S+)\s+(\d+)\s+([\d.]+):\s+raw_syscalls:sys_(enter|exit):\s+NR (\d+)(?: = (-?\d+))?/;

/**
 * Parses `perf script -F comm,tid,time,event,trace` output into syscall events of the given
 * threads, in time order. Scheduler lines are not needed for the hops: a wake-up shows as the
 * sleeper's wait syscall returning.
 */
export function parseTrace(text: string, roleOf: (tid: number, comm: string) => Role | null): TraceEvent[] {
  const out: TraceEvent[] = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const role = roleOf(Number(m[2]), m[1]!);
    if (role === null) continue;
    out.push({
      tUs: Number(m[3]) * 1e6,
      role,
      kind: m[4] === 'enter' ? 'enter' : 'exit',
      nr: Number(m[5]),
      ret: m[6] === undefined ? 0 : Number(m[6]),
    });
  }
  return out.sort((a, b) => a.tUs - b.tUs);
}

/**
 * Per request, the duration of each hop (µs), and the whole (`total`). A request starts at the
 * client's `write` and ends when the client's wait returns after the last write towards it.
 * `viaProxy` false: direct. A wake-up can end before the write that caused it returns (the woken
 * thread runs on the other core), so each wake is searched from the causing write's entry.
 */
export function hopDurations(ev: TraceEvent[], viaProxy: boolean): Map<Hop | 'total', number[]> {
  const hops: readonly Hop[] = viaProxy ? PROXY_HOPS : DIRECT_HOPS;
  const out = new Map<Hop | 'total', number[]>([...hops, 'total'].map((h) => [h as Hop | 'total', []]));
  // The index of the first matching event after `from`; ev.length when there is none.
  const find = (from: number, role: Role, kind: 'enter' | 'exit', nrs: Set<number>): number => {
    for (let i = from + 1; i < ev.length; i++) {
      const e = ev[i]!;
      // A wait counts as a wake-up only when it returned events.
      if (e.role === role && e.kind === kind && nrs.has(e.nr) && (kind === 'enter' || !WAITS.has(e.nr) || e.ret > 0))
        return i;
    }
    return ev.length;
  };
  const t = (k: number): number => ev[k]!.tUs;
  let i = -1;
  for (;;) {
    const a = find(i, 'client', 'enter', CLIENT_WRITE);
    if (a === ev.length) break;
    let spans: number[];
    let end: number;
    if (viaProxy) {
      const b = find(a, 'proxy', 'exit', WAITS);
      const c = find(b, 'proxy', 'enter', WRITES);
      const c2 = find(c, 'proxy', 'exit', WRITES);
      const d = find(c, 'host', 'exit', WAITS);
      const g = find(d, 'host', 'enter', WRITES);
      const h = find(g, 'proxy', 'exit', WAITS);
      const k = find(Math.max(h, c2), 'proxy', 'enter', WRITES);
      const k2 = find(k, 'proxy', 'exit', WRITES);
      end = find(k, 'client', 'exit', WAITS);
      if (c2 === ev.length || k2 === ev.length || end === ev.length) break;
      spans = [
        t(b) - t(a),
        t(c) - t(b),
        t(c2) - t(c),
        t(d) - t(c),
        t(g) - t(d),
        t(h) - t(g),
        t(k) - t(h),
        t(k2) - t(k),
        t(end) - t(k),
      ];
    } else {
      const d = find(a, 'host', 'exit', WAITS);
      const g = find(d, 'host', 'enter', WRITES);
      end = find(g, 'client', 'exit', WAITS);
      if (end === ev.length) break;
      spans = [t(d) - t(a), t(g) - t(d), t(end) - t(g)];
    }
    for (let n = 0; n < hops.length; n++) out.get(hops[n]!)!.push(spans[n]!);
    out.get('total')!.push(t(end) - t(a));
    i = end;
  }
  return out;
}

export interface HopsResult {
  target: TargetName;
  scenario: string;
  requests: number;
  /** Median µs per hop, and of the whole client write → client wake. */
  hopsUs: Partial<Record<Hop, number>>;
  totalUs: number;
  /**
   * The slowest requests (whole request at or above the 99th percentile): how many, the threshold,
   * and each hop's mean over them. Against the medians it shows which hop a tail request spends its
   * extra time in.
   */
  tail: { requests: number; thresholdUs: number; hopsUs: Partial<Record<Hop, number>>; totalUs: number } | null;
}

/** The share of requests, from the slowest, that `tail` describes. */
export const TAIL_SHARE = 0.01;

/** Medians of hopDurations, and the hops of the slowest requests. */
export function summarizeHops(target: TargetName, scenario: string, d: Map<Hop | 'total', number[]>): HopsResult {
  const hopsUs: Partial<Record<Hop, number>> = {};
  for (const [h, v] of d) if (h !== 'total' && v.length > 0) hopsUs[h] = median(v);
  const totals = d.get('total') ?? [];
  return {
    target,
    scenario,
    requests: totals.length,
    hopsUs,
    totalUs: totals.length > 0 ? median(totals) : Number.NaN,
    tail: tailOf(d, totals),
  };
}

/** Per hop, the mean over the requests whose whole is among the slowest TAIL_SHARE (at least one). */
function tailOf(d: Map<Hop | 'total', number[]>, totals: number[]): HopsResult['tail'] {
  if (totals.length === 0) return null;
  const n = Math.max(1, Math.floor(totals.length * TAIL_SHARE));
  // Indices of the n slowest requests: every hop's array holds one value per request, in order.
  const slowest = totals
    .map((us, i) => [us, i] as const)
    .sort((a, b) => b[0] - a[0])
    .slice(0, n)
    .map(([, i]) => i);
  const mean = (v: number[]): number => slowest.reduce((sum, i) => sum + v[i]!, 0) / n;
  const hopsUs: Partial<Record<Hop, number>> = {};
  for (const [h, v] of d) if (h !== 'total' && v.length === totals.length) hopsUs[h] = mean(v);
  return { requests: n, thresholdUs: totals[slowest[n - 1]!]!, hopsUs, totalUs: mean(totals) };
}

/** The proxy's threads to trace: nginx's workers; the agent's busiest thread (the one serving the port). */
function proxyTids(t: Target, runNsBefore: Map<number, number>): number[] {
  if (t.name === 'direct') return [];
  if (t.name === 'nginx') return childPids(t.mainPid);
  let best = -1;
  let most = -1;
  for (const [tid, ns] of threadRunNs(t.mainPid)) {
    const d = ns - (runNsBefore.get(tid) ?? 0);
    if (d > most) {
      most = d;
      best = tid;
    }
  }
  return [best];
}

export interface HopsOptions {
  traceSec: number;
  workDir: string;
}

/** Runs wrk (1 client) at the target, traces `traceSec` of it with perf, returns each request's hops. */
export async function traceHops(t: Target, s: Scenario, o: HopsOptions): Promise<Map<Hop | 'total', number[]>> {
  if (t.hostPid === undefined) throw new Error(`${t.name}: no host process to trace`);
  const warmSec = 1.5;
  const [cmd, argv] = wrkCommand({
    url: t.base + PATHS[s.path],
    clients: 1,
    keepAlive: s.keepAlive,
    durationSec: Math.ceil(warmSec + o.traceSec + 1.5),
    cgroupProcs: t.clientCgroupProcs,
  });
  const before = t.name === 'agent' ? threadRunNs(t.mainPid) : new Map<number, number>();
  const wrk = spawn(cmd, argv, { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => wrk.once('close', () => resolve()));
  try {
    await new Promise((r) => setTimeout(r, warmSec * 1000));
    const wrkTids = wrk.pid === undefined ? [] : [...threadRunNs(wrk.pid).keys()];
    const proxy = proxyTids(t, before);
    const host = t.hostPid;
    const tids = [...wrkTids, ...proxy, host];
    const data = path.join(o.workDir, `hops-${t.name}-${s.id}.data`);
    const rec = spawnSync(
      'perf',
      [
        'record',
        '-q',
        '-e',
        'raw_syscalls:sys_enter,raw_syscalls:sys_exit',
        '-t',
        tids.join(','),
        '-o',
        data,
        '--',
        'sleep',
        String(o.traceSec),
      ],
      { encoding: 'utf8' },
    );
    if (rec.status !== 0) throw new Error(`perf record failed: ${(rec.stderr ?? '').trim() || rec.status}`);
    const script = spawnSync('perf', ['script', '-i', data, '-F', 'comm,tid,time,event,trace'], {
      encoding: 'utf8',
      maxBuffer: 1 << 30,
    });
    rmSync(data, { force: true });
    if (script.status !== 0) throw new Error(`perf script failed: ${(script.stderr ?? '').trim()}`);
    const wrkSet = new Set(wrkTids);
    const proxySet = new Set(proxy);
    const ev = parseTrace(script.stdout, (tid, comm) =>
      wrkSet.has(tid) && comm === 'wrk' ? 'client' : proxySet.has(tid) ? 'proxy' : tid === host ? 'host' : null,
    );
    return hopDurations(ev, t.name !== 'direct');
  } finally {
    await exited;
  }
}

/**
 * The hop table of one scenario: one row per hop, two columns per target: the median µs, and the
 * mean µs over its slowest 1% of requests (`tail`).
 */
export function hopsTable(results: HopsResult[]): string {
  const cell = (us: number | undefined): string => (us === undefined || Number.isNaN(us) ? '' : us.toFixed(0));
  const rows: string[][] = [
    ['hop: median µs | mean µs of the slowest 1%', ...results.flatMap((r) => [r.target, `${r.target} 1%`])],
  ];
  const hops = new Set<Hop>([...PROXY_HOPS, ...DIRECT_HOPS]);
  for (const h of hops) {
    if (!results.some((r) => r.hopsUs[h] !== undefined)) continue;
    rows.push([h, ...results.flatMap((r) => [cell(r.hopsUs[h]), cell(r.tail?.hopsUs[h])])]);
  }
  rows.push([
    'whole request (client write → client wakes)',
    ...results.flatMap((r) => [cell(r.totalUs), cell(r.tail?.totalUs)]),
  ]);
  rows.push(['requests traced', ...results.flatMap((r) => [String(r.requests), String(r.tail?.requests ?? 0)])]);
  const w = rows[0]!.map((_, k) => Math.max(...rows.map((r) => r[k]!.length)));
  return rows.map((r) => r.map((c, k) => (k === 0 ? c.padEnd(w[k]!) : c.padStart(w[k]!))).join('  ')).join('\n');
}

export interface RunHopsOptions {
  traceSec: number;
  /** Each target is traced this many times, in alternation; the requests of all rounds are pooled. */
  rounds: number;
  workDir: string;
  write: boolean;
  log: (line: string) => void;
  /** Written with the results: the machine and versions. */
  machine: { hostname: string };
}

/** `--hops`: per scenario (1 client only), each target traced in turn; tables on stdout, JSON written. */
export async function runHops(targets: Target[], scenarios: Scenario[], o: RunHopsOptions): Promise<number> {
  const results: HopsResult[] = [];
  for (const s of scenarios) {
    if (s.clients !== 1) {
      o.log(`--hops: skipping ${s.id} (hops are traced with one client)`);
      continue;
    }
    const pooled = new Map<TargetName, Map<Hop | 'total', number[]>>();
    for (let round = 1; round <= o.rounds; round++) {
      for (const t of targets) {
        o.log(`--hops: ${s.id} round ${round}/${o.rounds} ${t.name}: tracing ${o.traceSec} s`);
        const d = await traceHops(t, s, { traceSec: o.traceSec, workDir: o.workDir });
        const into = pooled.get(t.name) ?? new Map<Hop | 'total', number[]>();
        for (const [h, v] of d) into.set(h, [...(into.get(h) ?? []), ...v]);
        pooled.set(t.name, into);
      }
    }
    const row = targets.map((t) => summarizeHops(t.name, s.id, pooled.get(t.name)!));
    results.push(...row);
    process.stdout.write(`\n${s.id}\n${hopsTable(row)}\n`);
  }
  if (o.write && results.length > 0) {
    const date = new Date();
    mkdirSync(RESULTS_DIR, { recursive: true });
    const file = path.join(RESULTS_DIR, `${resultBaseName(date, o.machine.hostname)}-hops.json`);
    const json = {
      schema: 1,
      kind: 'hops',
      date: date.toISOString(),
      machine: o.machine,
      traceSec: o.traceSec,
      results,
    };
    writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
    process.stdout.write(`\nwrote ${file}\n`);
  }
  return 0;
}
