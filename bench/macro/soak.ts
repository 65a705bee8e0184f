// `--soak`: the agent under steady mixed load for N minutes. RSS and open descriptors are sampled
// at short idle pauses between load chunks (so in-flight connections do not count) and compared
// with the level after the first minute (JIT, pools and caches warm up there). Fails on > 5% growth.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { agentSuffix, RESULTS_DIR, resultBaseName } from './output.js';
import { openFds, rssBytes } from './proc.js';
import { PATHS } from './scenarios.js';
import type { SysInfo } from './sysinfo.js';
import type { Target } from './target.js';
import { errorCount, runWrk } from './wrk.js';

export interface SoakOptions {
  minutes: number;
  reporter: string;
  log: (s: string) => void;
  info: SysInfo;
  clientSockets: 'native' | 'node';
}

interface Sample {
  t: number;
  rssMiB: number;
  fds: number;
  requests: number;
}

const CHUNK_SEC = 20;
const LIMIT = 1.05;

export async function runSoak(agent: Target, o: SoakOptions): Promise<number> {
  const pid = agent.mainPid;
  const t0 = Date.now();
  const end = t0 + o.minutes * 60_000;
  const samples: Sample[] = [];
  let requests = 0;
  let errors = 0;
  let chunk = 0;
  o.log(`soak: ${o.minutes} min of ${CHUNK_SEC}s load chunks (keep-alive and new-connection, 8 clients, both paths)`);
  while (Date.now() < end) {
    const keepAlive = chunk % 2 === 0;
    const path = chunk % 4 < 2 ? PATHS.instance : PATHS.token;
    const dur = Math.max(1, Math.min(CHUNK_SEC, Math.round((end - Date.now()) / 1000)));
    const r = await runWrk(
      {
        url: agent.base + path,
        clients: 8,
        keepAlive,
        durationSec: dur,
        ...(agent.clientCgroupProcs ? { cgroupProcs: agent.clientCgroupProcs } : {}),
      },
      o.reporter,
    );
    requests += r.requests;
    errors += errorCount(r);
    await new Promise((res) => setTimeout(res, 1500));
    const s = { t: Math.round((Date.now() - t0) / 1000), rssMiB: rssBytes(pid) / 1048576, fds: openFds(pid), requests };
    samples.push(s);
    o.log(`  t=${s.t}s rss ${s.rssMiB.toFixed(1)} MiB fds ${s.fds} requests ${requests} (${Math.round(r.rps)} req/s)`);
    chunk++;
  }
  const warm = samples.filter((s) => s.t >= 60);
  // Four samples = one cycle of the chunk pattern (keep-alive/new-connection × two paths).
  const base = warm.slice(0, 4);
  const last = warm.slice(-4);
  if (base.length === 0 || last.length === 0) {
    o.log('soak too short to compare (needs more than one minute)');
    return 1;
  }
  const avg = (xs: Sample[], f: (s: Sample) => number) => xs.reduce((a, s) => a + f(s), 0) / xs.length;
  const rssGrowth = avg(last, (s) => s.rssMiB) / avg(base, (s) => s.rssMiB);
  const fdGrowth = avg(last, (s) => s.fds) / avg(base, (s) => s.fds);
  const ok = rssGrowth <= LIMIT && fdGrowth <= LIMIT && errors === 0;
  const report = {
    minutes: o.minutes,
    requests,
    errors,
    rssGrowth: Math.round(rssGrowth * 1000) / 1000,
    fdGrowth: Math.round(fdGrowth * 1000) / 1000,
    limit: LIMIT,
    samples,
    machine: o.info,
    passed: ok,
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  // Kept beside the full runs' results: bench/results/<date>-<host>-soak.json.
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(
    RESULTS_DIR,
    `${resultBaseName(new Date(), o.info.hostname)}${agentSuffix(o.info, o.clientSockets)}-soak.json`,
  );
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  o.log(`wrote ${path.relative(process.cwd(), file)}`);
  process.stdout.write(
    `soak ${ok ? 'PASSED' : 'FAILED'}: RSS ×${report.rssGrowth}, fds ×${report.fdGrowth} (limit ×${LIMIT}), ${requests} requests, ${errors} errors\n`,
  );
  return ok ? 0 : 1;
}
