// Where the agent's CPU goes: reads the V8 CPU profiles `--cpu-prof` wrote (one per thread) and
// sums self time by category (our parts, Node's HTTP/net/stream internals, crypto, GC) and by
// function. Idle time is left out of the percentages: they are shares of busy time.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  files: number;
  busyMs: number;
  idleMs: number;
  byCategory: { category: string; ms: number; pct: number }[];
  topFunctions: { fn: string; where: string; ms: number; pct: number }[];
}

/** Category of a frame: our part (lib/proxy), a package, a Node core module, or a V8 pseudo-frame. */
export function category(fn: string, url: string): string {
  if (!url) {
    if (fn === '(idle)' || fn === '(program)' || fn === '(garbage collector)') return fn;
    return '(native)';
  }
  const ours = url.match(/\/dist\/lib\/([^/]+)\//);
  if (ours) return `lib/${ours[1]}`;
  const pkg = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (pkg) return `npm:${pkg[1]}`;
  if (url.startsWith('node:')) {
    const mod = url.slice(5).replace(/^internal\//, '');
    if (/^(_http|http)/.test(mod)) return 'node:http';
    if (/^(net|stream|streams|dgram|tcp)|^_stream/.test(mod)) return 'node:net+stream';
    if (/crypto/.test(mod)) return 'node:crypto';
    if (/^(timers|process\/task_queues|async_hooks|process\/)/.test(mod)) return 'node:timers+ticks';
    if (/^(worker|per_context\/messageport|event_target)/.test(mod)) return 'node:worker+messaging';
    if (/^(fs|streams\/)/.test(mod)) return 'node:fs';
    return 'node:other';
  }
  return 'other';
}

export function summarizeProfiles(dir: string, top = 15): ProfileSummary | undefined {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  } catch {
    return undefined;
  }
  if (files.length === 0) return undefined;
  const byCat = new Map<string, number>();
  const byFn = new Map<string, { fn: string; where: string; us: number }>();
  for (const f of files) {
    const p = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as CpuProfile;
    const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    // Self time of a sample = the delta to the next sample (V8's own attribution).
    for (let i = 0; i < p.samples.length; i++) {
      const n = nodes.get(p.samples[i]!);
      if (!n) continue;
      const us = p.timeDeltas[i + 1] ?? 0;
      const { functionName, url, lineNumber } = n.callFrame;
      const fn = functionName || '(anonymous)';
      const cat = category(fn, url);
      byCat.set(cat, (byCat.get(cat) ?? 0) + us);
      const where = url ? `${url.replace(/^file:\/\/.*\/dist\//, 'dist/')}:${lineNumber + 1}` : '';
      const key = `${fn}@${where}`;
      const e = byFn.get(key) ?? { fn, where, us: 0 };
      e.us += us;
      byFn.set(key, e);
    }
  }
  const idleUs = byCat.get('(idle)') ?? 0;
  byCat.delete('(idle)');
  for (const [k, v] of byFn) if (v.fn === '(idle)') byFn.delete(k);
  const busyUs = [...byCat.values()].reduce((a, b) => a + b, 0);
  const pct = (us: number) => Math.round((1000 * us) / Math.max(1, busyUs)) / 10;
  return {
    files: files.length,
    busyMs: Math.round(busyUs / 1000),
    idleMs: Math.round(idleUs / 1000),
    byCategory: [...byCat]
      .sort((a, b) => b[1] - a[1])
      .map(([category, us]) => ({ category, ms: Math.round(us / 1000), pct: pct(us) })),
    topFunctions: [...byFn.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ fn: e.fn, where: e.where, ms: Math.round(e.us / 1000), pct: pct(e.us) })),
  };
}

export function profileText(p: ProfileSummary): string {
  const lines = [`agent CPU profile (${p.files} thread profiles, ${p.busyMs} ms busy): share of busy time`];
  for (const c of p.byCategory.slice(0, 12)) lines.push(`  ${c.pct.toFixed(1).padStart(5)}%  ${c.category}`);
  lines.push('  top functions (self time):');
  for (const f of p.topFunctions) lines.push(`  ${f.pct.toFixed(1).padStart(5)}%  ${f.fn}  ${f.where}`);
  return lines.join('\n');
}
