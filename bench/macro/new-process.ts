// A new client process per request (`npm run bench -- --new-process`): many metadata clients are a
// `curl` in a script, a CLI run by cron, an SDK asking once in a while; wrk, the load generator of
// the latency rounds, is one process sending back to back. Here one shell per target and round runs
// `curl` once per request, one after another, and each `curl` times its own request
// (`%{time_total}`: connect to the last byte, without the process's start-up). Between two requests
// the machine runs a process start: the agent meets each request cold, after a pause, as it does
// with such clients. The targets alternate per round; the requests of all rounds are pooled.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { RESULTS_DIR, resultBaseName } from './output.js';
import { totalCpuSeconds } from './proc.js';
import { PATHS } from './scenarios.js';
import type { Target, TargetName } from './target.js';

export interface NewProcessRow {
  target: TargetName;
  requests: number;
  /** curl's own time per request, µs. */
  p50: number;
  p90: number;
  /** p50 minus the floor's (direct) p50; null for the floor itself. */
  addedP50: number | null;
  /** CPU of all the target's processes per request, µs (a proxy's own, without its host; direct: the host). */
  cpuUsPerReq: number;
}

/** A sorted copy's value at quantile q (nearest rank). */
function quantile(values: number[], q: number): number {
  const v = values.slice().sort((a, b) => a - b);
  return v.length === 0 ? Number.NaN : v[Math.min(v.length - 1, Math.floor(v.length * q))]!;
}

/** Per-target rows from pooled samples (µs) and CPU seconds; added latency against `direct`. */
export function summarizeNewProcess(
  samples: Map<TargetName, number[]>,
  cpuSec: Map<TargetName, number>,
): NewProcessRow[] {
  const floor = samples.has('direct') ? quantile(samples.get('direct')!, 0.5) : null;
  return [...samples].map(([target, us]) => {
    const p50 = quantile(us, 0.5);
    return {
      target,
      requests: us.length,
      p50,
      p90: quantile(us, 0.9),
      addedP50: target === 'direct' || floor === null ? null : p50 - floor,
      cpuUsPerReq: us.length > 0 ? ((cpuSec.get(target) ?? 0) * 1e6) / us.length : Number.NaN,
    };
  });
}

/** The agent's added p50 over nginx's, when both were measured and nginx added something. */
export function addedRatio(rows: NewProcessRow[]): number | null {
  const a = rows.find((r) => r.target === 'agent')?.addedP50;
  const n = rows.find((r) => r.target === 'nginx')?.addedP50;
  return a == null || n == null || n <= 0 ? null : a / n;
}

/** Runs `requests` curl processes one after another against `t`; each one's time_total in µs. */
function curlRound(t: Target, requests: number): Promise<number[]> {
  const url = `${t.base}${PATHS.instance}`;
  // One shell per round: it joins the redirect's cgroup (agent) and its curls inherit it.
  const script =
    '[ -n "$1" ] && echo $$ > "$1"; i=0; while [ $i -lt "$2" ]; do i=$((i+1)); ' +
    'curl -sS -o /dev/null -H "Metadata: true" -w "%{http_code} %{time_total}\\n" "$3" || echo "000 0"; done';
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script, 'sh', t.clientCgroupProcs ?? '', String(requests), url], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString('latin1');
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`curl loop for ${t.name} exited ${code}`));
      const us: number[] = [];
      for (const line of out.trim().split('\n')) {
        const [status, secs] = line.split(' ');
        if (status !== '200') return reject(new Error(`${t.name}: a request answered ${status}, not 200`));
        us.push(Number(secs) * 1e6);
      }
      resolve(us);
    });
  });
}

export interface RunNewProcessOptions {
  requests: number;
  rounds: number;
  write: boolean;
  log: (line: string) => void;
  machine: { hostname: string };
  /** Appended to the result file's name (the agent's Node, its client sockets). */
  suffix?: string;
}

/** `--new-process`: each target in turn per round; a table on stdout, JSON written. */
export async function runNewProcess(targets: Target[], o: RunNewProcessOptions): Promise<number> {
  const samples = new Map<TargetName, number[]>();
  const cpuSec = new Map<TargetName, number>();
  for (let round = 1; round <= o.rounds; round++) {
    for (const t of targets) {
      o.log(`--new-process: round ${round}/${o.rounds} ${t.name}: ${o.requests} curl processes`);
      const before = totalCpuSeconds(t.pids());
      const us = await curlRound(t, o.requests);
      const cpu = totalCpuSeconds(t.pids()) - before;
      cpuSec.set(t.name, (cpuSec.get(t.name) ?? 0) + cpu);
      const p50 = quantile(us, 0.5);
      o.log(`--new-process:   ${t.name} p50 ${p50.toFixed(0)} µs, CPU ${((cpu * 1e6) / us.length).toFixed(0)} µs/req`);
      samples.set(t.name, [...(samples.get(t.name) ?? []), ...us]);
    }
  }
  const rows = summarizeNewProcess(samples, cpuSec);
  const f = (x: number | null) => (x === null || !Number.isFinite(x) ? '-' : x.toFixed(0));
  const lines = ['target   requests   p50 µs   p90 µs   added p50   CPU µs/req (its processes; direct: the host)'];
  for (const r of rows)
    lines.push(
      `${r.target.padEnd(8)} ${String(r.requests).padStart(8)} ${f(r.p50).padStart(8)} ${f(r.p90).padStart(8)} ${f(r.addedP50).padStart(11)}   ${f(r.cpuUsPerReq)}`,
    );
  const ratio = addedRatio(rows);
  if (ratio !== null) lines.push(`agent / nginx added p50: ${ratio.toFixed(2)}x`);
  process.stdout.write(`\na new curl process per request (instance path)\n${lines.join('\n')}\n`);
  if (o.write) {
    const date = new Date();
    mkdirSync(RESULTS_DIR, { recursive: true });
    const file = path.join(
      RESULTS_DIR,
      `${resultBaseName(date, o.machine.hostname)}${o.suffix ?? ''}-new-process.json`,
    );
    const json = { schema: 1, kind: 'new-process', date: date.toISOString(), machine: o.machine, rows, ratio };
    writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
    process.stdout.write(`\nwrote ${file}\n`);
  }
  return 0;
}
