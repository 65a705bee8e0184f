/**
 * Micro-benchmark of a caller's claims (lib/identity) on the accept path, in µs per connection:
 * - a new caller process (the claims cache misses: its /proc facts are read), with node:fs's reads
 *   and with the addon's `procSnapshot` (one directory fd on /proc/<pid>), alternating;
 * - a caller seen before (a cache hit: one comparison, nothing read).
 * Metadata clients are often a new process per request (curl, a script), so the miss is paid by
 * every such request. The caller is a live `sleep` child with the kernel facts the redirector hands
 * over. Run: node dist/bench/micro/identity.js [--iterations 5000] [--rounds 5]. No network.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  ClaimsResolver,
  currentComm,
  type OriginFacts,
  type ProcessSnapshotReader,
  readExeIdentity,
  readProcessSnapshot,
  readStartTime,
} from '../../lib/identity/index.js';
import { processSnapshotReader } from '../../lib/redirector/index.js';

const { values } = parseArgs({
  options: { iterations: { type: 'string', default: '5000' }, rounds: { type: 'string', default: '5' } },
});
const iterations = Number(values.iterations);
const rounds = Number(values.rounds);

const user = { name: 'bench', groups: [{ gid: 0, name: 'root' }] };
const resolverWith = (snapshot: ProcessSnapshotReader) =>
  new ClaimsResolver({ userInfo: () => user, groupName: () => 'root', snapshot });

function pct(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** µs per resolve: `fresh` gives each call a new resolver (a new caller), else one is reused. */
function measure(facts: OriginFacts, snapshot: ProcessSnapshotReader, fresh: boolean): { p50: number; p90: number } {
  const times = new Float64Array(iterations);
  let shared = resolverWith(snapshot);
  for (let i = 0; i < iterations; i++) {
    if (fresh) shared = resolverWith(snapshot);
    const t0 = performance.now();
    const c = shared.resolve(facts);
    times[i] = (performance.now() - t0) * 1000;
    if (c.degraded !== null) throw new Error(`claims degraded: ${c.degraded}`);
  }
  times.sort();
  return { p50: pct(times, 0.5), p90: pct(times, 0.9) };
}

async function main(): Promise<void> {
  const addon = processSnapshotReader();
  const child = spawn('/usr/bin/sleep', ['600'], { stdio: 'ignore' });
  try {
    const pid = child.pid!;
    for (let i = 0; i < 200 && !(currentComm(pid, pid) === 'sleep' && readProcessSnapshot(pid)?.rawCmdline); i++)
      await new Promise((r) => setTimeout(r, 5));
    const exe = readExeIdentity(pid);
    const start = readStartTime(pid);
    if (exe === null || start === null) throw new Error('the sleep child did not start');
    const facts: OriginFacts = {
      pid,
      tid: pid,
      uid: 0,
      gid: 0,
      comm: 'sleep',
      cgroupId: 1n,
      exeDev: exe.dev,
      exeIno: exe.ino,
      startTimeNs: BigInt(start) * 10_000_000n,
    };
    const cases: [string, ProcessSnapshotReader, boolean][] = [['new caller, node:fs', readProcessSnapshot, true]];
    if (addon !== null) cases.push(['new caller, addon', addon, true]);
    cases.push(['caller seen before', addon ?? readProcessSnapshot, false]);
    const results = new Map<string, { p50: number; p90: number }[]>();
    for (const [name, reader, fresh] of cases) measure(facts, reader, fresh); // warm-up
    for (let r = 0; r < rounds; r++)
      for (const [name, reader, fresh] of cases) {
        const list = results.get(name) ?? [];
        list.push(measure(facts, reader, fresh));
        results.set(name, list);
      }
    const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(`claims per connection, µs (median of ${rounds} rounds × ${iterations}):`);
    const out: Record<string, { p50: number; p90: number }> = {};
    for (const [name, list] of results) {
      out[name] = { p50: median(list.map((x) => x.p50)), p90: median(list.map((x) => x.p90)) };
      console.log(
        `  ${name.padEnd(22)} p50 ${out[name].p50.toFixed(2).padStart(7)}  p90 ${out[name].p90.toFixed(2).padStart(7)}`,
      );
    }
    const fs = out['new caller, node:fs'];
    const native = out['new caller, addon'];
    if (fs && native) console.log(`  addon / node:fs (p50): ${(native.p50 / fs.p50).toFixed(2)}x`);
  } finally {
    child.kill('SIGKILL');
  }
}

await main();
