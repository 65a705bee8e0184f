// Where the agent's CPU goes: V8's tick logs (`node --prof`, one per isolate: the main thread and
// every worker), preprocessed by `node --prof-process --preprocess`, summed by owner. A tick is
// charged to the innermost JavaScript frame on its stack, so native work (syscalls, crypto, the
// HTTP parser) counts toward the JavaScript that asked for it; GC is its own line; idle is left out
// (percentages are shares of busy time).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

interface Preprocessed {
  code: { name: string; type: string }[];
  ticks: { tm: number; vm: number; s: number[] }[];
}

export interface ProfileSummary {
  isolates: number;
  ticks: number;
  idleTicks: number;
  byCategory: { category: string; ticks: number; pct: number }[];
  topFunctions: { fn: string; ticks: number; pct: number }[];
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

const VM_GC = 1;
const VM_IDLE = 8;

/** Splits a V8 code name `fn file:///x/dist/lib/proxy/a.js:1:2` into function and script url. */
function splitName(name: string): { fn: string; url: string } {
  const m = name.match(/^(.*?)\s*((?:file:\/\/|node:)\S+?)(?::\d+:\d+)?$/);
  if (!m) return { fn: name.replace(/^[*~^+]/, ''), url: '' };
  return { fn: (m[1] ?? '').replace(/^[*~^+]/, '') || '(anonymous)', url: m[2] ?? '' };
}

export function summarizeTickLogs(dir: string, top = 15): ProfileSummary | undefined {
  let logs: string[];
  try {
    logs = readdirSync(dir).filter((f) => /^isolate-.*-v8\.log$/.test(f));
  } catch {
    return undefined;
  }
  if (logs.length === 0) return undefined;
  const byCat = new Map<string, number>();
  const byFn = new Map<string, number>();
  let ticks = 0;
  let idle = 0;
  for (const log of logs) {
    const r = spawnSync(process.execPath, ['--prof-process', '--preprocess', path.join(dir, log)], {
      encoding: 'utf8',
      maxBuffer: 2 ** 30,
    });
    if (r.status !== 0 || !r.stdout) continue;
    const p = JSON.parse(r.stdout) as Preprocessed;
    for (const t of p.ticks) {
      if (t.vm === VM_IDLE) {
        idle++;
        continue;
      }
      ticks++;
      const topCode = t.s[0] !== undefined && t.s[0] >= 0 ? p.code[t.s[0]] : undefined;
      const fnKey = topCode
        ? `${topCode.type === 'JS' ? '' : '[native] '}${topCode.name}`.slice(0, 160)
        : '(unknown code)';
      byFn.set(fnKey, (byFn.get(fnKey) ?? 0) + 1);
      let cat = t.vm === VM_GC ? '(garbage collector)' : '(native, no JS on stack)';
      if (t.vm !== VM_GC) {
        for (let i = 0; i < t.s.length; i += 2) {
          const c = t.s[i]! >= 0 ? p.code[t.s[i]!] : undefined;
          if (c?.type !== 'JS') continue;
          const { fn, url } = splitName(c.name);
          cat = category(fn, url);
          break;
        }
      }
      byCat.set(cat, (byCat.get(cat) ?? 0) + 1);
    }
  }
  const pct = (n: number) => Math.round((1000 * n) / Math.max(1, ticks)) / 10;
  return {
    isolates: logs.length,
    ticks,
    idleTicks: idle,
    byCategory: [...byCat].sort((a, b) => b[1] - a[1]).map(([category, n]) => ({ category, ticks: n, pct: pct(n) })),
    topFunctions: [...byFn]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn, n]) => ({ fn, ticks: n, pct: pct(n) })),
  };
}

export function profileText(p: ProfileSummary): string {
  const lines = [`agent CPU profile (V8 ticks from ${p.isolates} isolates, ${p.ticks} busy ticks): share of busy time`];
  for (const c of p.byCategory.slice(0, 12)) lines.push(`  ${c.pct.toFixed(1).padStart(5)}%  ${c.category}`);
  lines.push('  top frames (self ticks):');
  for (const f of p.topFunctions) lines.push(`  ${f.pct.toFixed(1).padStart(5)}%  ${f.fn}`);
  return lines.join('\n');
}
