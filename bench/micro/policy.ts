/**
 * Micro-benchmark of the policy hot path: canonicalize + authorize per request on a 100-privilege
 * policy (p50/p99 in µs), and compile time per 1,000 rules. Run: node dist/bench/micro/policy.js
 * Bounded: fixed iteration counts, no I/O, no network.
 */
import { performance } from 'node:perf_hooks';
import {
  authorize,
  type CallerClaims,
  canonicalize,
  closeSelfTestPool,
  compilePolicy,
  runSelfTest,
} from '../../lib/policy/index.js';

function policy(n: number) {
  const privileges = Array.from({ length: n }, (_, i) => ({
    name: `p${i}`,
    path: `/metadata/area${i % 10}/item${i}`,
    ...(i % 3 === 0 ? { queryParameters: { 'api-version': '2021-02-01' } } : {}),
  }));
  const identities = Array.from({ length: Math.max(1, n / 10) }, (_, i) => ({ name: `id${i}`, userName: `user${i}` }));
  return {
    defaultAccess: 'deny',
    mode: 'enforce',
    id: `bench-${n}`,
    rules: {
      privileges,
      roles: privileges.map((p) => ({ name: `r-${p.name}`, privileges: [p.name] })),
      identities,
      roleAssignments: privileges.map((p, i) => ({ role: `r-${p.name}`, identities: [`id${i % identities.length}`] })),
    },
  };
}

const modes = { imds: 'enforce', wireserver: 'enforce', hostga: 'enforce' } as const;
const caller: CallerClaims = {
  pid: 1,
  uid: 1000,
  gid: 1000,
  userName: 'user7',
  groups: [{ gid: 1000, name: 'user7' }],
  exePath: '/usr/bin/curl',
  processName: 'curl',
  cmdline: '',
  cgroupId: 1n,
};

function pct(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

const { snapshot } = compilePolicy({ modes: { ...modes }, rules: { imds: policy(100) } });
const targets = [
  '/metadata/area7/item7?api-version=2021-02-01',
  '/metadata/area3/item93/sub/x?format=json',
  '/metadata/identity/oauth2/token?resource=https%3A%2F%2Fmanagement.azure.com%2F&api-version=2018-02-01',
  '/metadata/instance/compute?api-version=2021-02-01',
  '/Metadata/AREA1/./item11/../item21',
];
const N = 200_000;
for (let i = 0; i < 20_000; i++)
  authorize(snapshot, { endpoint: 'imds', method: 'GET', rawTarget: targets[i % 5]! }, caller);
const samples = new Float64Array(N);
let allowed = 0;
for (let i = 0; i < N; i++) {
  const req = { endpoint: 'imds' as const, method: 'GET', rawTarget: targets[i % targets.length]! };
  const t0 = performance.now();
  const d = authorize(snapshot, req, caller);
  samples[i] = (performance.now() - t0) * 1000;
  if (d.forward) allowed++;
}
samples.sort();
const canonSamples = new Float64Array(N);
for (let i = 0; i < N; i++) {
  const t0 = performance.now();
  canonicalize(targets[i % targets.length]!);
  canonSamples[i] = (performance.now() - t0) * 1000;
}
canonSamples.sort();

const compileMs: number[] = [];
const thousand = policy(1000);
for (let i = 0; i < 20; i++) {
  const t0 = performance.now();
  compilePolicy({ modes: { ...modes }, rules: { imds: thousand } });
  compileMs.push(performance.now() - t0);
}
compileMs.sort((a, b) => a - b);
const t0 = performance.now();
const twins = await runSelfTest({ modes: { ...modes }, rules: { imds: thousand } });
const selfTestMs = performance.now() - t0;
await closeSelfTestPool();

const result = {
  node: process.version,
  requests: N,
  allowedShare: allowed / N,
  authorizeUs: { p50: pct(samples, 0.5), p99: pct(samples, 0.99), p999: pct(samples, 0.999) },
  canonicalizeUs: { p50: pct(canonSamples, 0.5), p99: pct(canonSamples, 0.99) },
  compileMsPer1000Rules: { median: compileMs[10], min: compileMs[0] },
  evilTwinSelfTestMsPer1000Rules: selfTestMs,
  evilTwinProblems: twins.length,
};
process.stdout.write(`policy micro-benchmark (${process.version}, ${N} requests over ${targets.length} targets, 100 privileges)
canonicalize+authorize  p50 ${result.authorizeUs.p50.toFixed(2)} µs  p99 ${result.authorizeUs.p99.toFixed(2)} µs  p99.9 ${result.authorizeUs.p999.toFixed(2)} µs
canonicalize alone      p50 ${result.canonicalizeUs.p50.toFixed(2)} µs  p99 ${result.canonicalizeUs.p99.toFixed(2)} µs
compile 1,000 rules     median ${result.compileMsPer1000Rules.median!.toFixed(2)} ms  min ${result.compileMsPer1000Rules.min!.toFixed(2)} ms
evil-twin self-test     ${selfTestMs.toFixed(1)} ms for 1,000 rules in a piscina worker (incl. worker start), ${twins.length} problems
${JSON.stringify(result)}
`);
