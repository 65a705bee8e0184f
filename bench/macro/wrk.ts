// Drives wrk, the load generator: C, epoll, one connection per simulated client. wrk records every
// request's latency (request write to response end) in a 1 µs-resolution histogram up to its
// timeout, so the percentiles below are exact over all requests, not samples. A Lua done() hook
// prints them as one JSON line that we parse.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { cpuSeconds } from './proc.js';

export interface LatencyUs {
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface WrkResult {
  requests: number;
  durationSec: number;
  rps: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latencyUs: LatencyUs;
  /** CPU the load generator itself used, as a share of one core (a bottleneck check). */
  loadgenCpuShare: number;
}

export interface WrkRun {
  url: string;
  clients: number;
  keepAlive: boolean;
  durationSec: number;
  /** cgroup.procs file to join before exec (the agent case: inside the redirect's cgroup). */
  cgroupProcs?: string;
  /** Called every 250 ms while wrk runs (to sample the target's RSS). */
  onTick?: () => void;
}

const REPORT_LUA = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nWRK_JSON {"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.3f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
`;

/** Writes the Lua reporter into dir and returns its path. */
export function writeReporter(dir: string): string {
  const file = path.join(dir, 'report.lua');
  writeFileSync(file, REPORT_LUA);
  return file;
}

/**
 * The command line of one wrk run: with `cgroupProcs`, a shell that joins the cgroup and then
 * becomes wrk (same pid); `reporter`: the Lua done() hook printing the JSON line.
 */
export function wrkCommand(run: Omit<WrkRun, 'onTick'>, reporter?: string): [string, string[]] {
  const threads = run.clients >= 16 ? 2 : 1;
  const args = ['-t', String(threads), '-c', String(run.clients), '-d', `${run.durationSec}s`, '--timeout', '5s'];
  args.push('-H', 'Metadata: true');
  if (reporter !== undefined) args.push('-s', reporter);
  if (!run.keepAlive) args.push('-H', 'Connection: close');
  args.push(run.url);
  return run.cgroupProcs
    ? ['/bin/sh', ['-c', 'echo $$ > "$0" && exec wrk "$@"', run.cgroupProcs, ...args]]
    : ['wrk', args];
}

/** Runs one wrk measurement; rejects when wrk fails or any request failed. */
export function runWrk(run: WrkRun, reporter: string): Promise<WrkResult> {
  const [cmd, argv] = wrkCommand(run, reporter);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const started = process.hrtime.bigint();
    let lastCpu = 0;
    const timer = setInterval(() => {
      const cpu = child.pid ? cpuSeconds(child.pid) : Number.NaN;
      if (Number.isFinite(cpu)) lastCpu = cpu;
      run.onTick?.();
    }, 250);
    child.on('error', (e) => {
      clearInterval(timer);
      reject(new Error(`could not start wrk (${e.message}); install it with: apt-get install -y wrk`));
    });
    child.on('close', (code) => {
      clearInterval(timer);
      const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
      const line = out.split('\n').find((l) => l.startsWith('WRK_JSON '));
      if (code !== 0 || !line) {
        reject(new Error(`wrk ${argv.join(' ')} exited ${code}: ${err.trim() || out.trim()}`));
        return;
      }
      const j = JSON.parse(line.slice(9)) as {
        requests: number;
        duration_us: number;
        errors: WrkResult['errors'];
        latency_us: LatencyUs;
      };
      const durationSec = j.duration_us / 1e6;
      resolve({
        requests: j.requests,
        durationSec,
        rps: j.requests / durationSec,
        errors: j.errors,
        latencyUs: j.latency_us,
        loadgenCpuShare: lastCpu / elapsed,
      });
    });
  });
}

/** Total failed requests in a result (connect/read/write errors, timeouts, 4xx/5xx). */
export function errorCount(r: WrkResult): number {
  const e = r.errors;
  return e.connect + e.read + e.write + e.status + e.timeout;
}
