// A hand-written SVG: one panel per scenario (rows: request path; columns: connection pattern),
// each with latency bars (p50 solid, p99 light) and throughput bars for direct, nginx and agent.
// Every panel has its own scale: 1-client keep-alive and 32-client new-connection latencies differ
// by orders of magnitude, and the comparison that matters is within a panel.
import type { ScenarioResult, Summary } from './measure.js';
import type { Comparison } from './report.js';
import type { TargetName } from './target.js';

const COLORS: Record<TargetName, [string, string]> = {
  direct: ['#6b7280', '#d1d5db'],
  nginx: ['#059669', '#a7f3d0'],
  agent: ['#2563eb', '#bfdbfe'],
};
const PANEL_W = 350;
const PANEL_H = 250;
const TOP = 96;
const LEFT = 20;

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const text = (x: number, y: number, s: string, attrs = '') =>
  `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(s)}</text>`;

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function short(v: number): string {
  if (!Number.isFinite(v)) return '-';
  if (v >= 10000) return `${(v / 1000).toFixed(0)}k`;
  if (v >= 1000) return `${(v / 1000).toFixed(1)}k`;
  return v.toFixed(0);
}

/** Bars for one sub-chart: groups of values, drawn in [x, x+w] × [y, y+h]. */
function bars(
  x: number,
  y: number,
  w: number,
  h: number,
  title: string,
  groups: { name: TargetName; values: { v: number; shade: 0 | 1 }[] }[],
): string {
  const out: string[] = [];
  const all = groups.flatMap((g) => g.values.map((b) => b.v)).filter(Number.isFinite);
  const max = niceMax(Math.max(0, ...all) * 1.12);
  out.push(text(x, y - 6, title, 'font-size="11" fill="#374151"'));
  for (let i = 0; i <= 2; i++) {
    const gy = y + h - (h * i) / 2;
    out.push(`<line x1="${x}" x2="${x + w}" y1="${gy}" y2="${gy}" stroke="#e5e7eb"/>`);
    out.push(text(x - 3, gy + 3, short((max * i) / 2), 'font-size="9" fill="#6b7280" text-anchor="end"'));
  }
  const gw = w / groups.length;
  groups.forEach((g, gi) => {
    const bw = Math.min(26, (gw - 8) / g.values.length);
    const gx = x + gi * gw + (gw - bw * g.values.length) / 2;
    g.values.forEach((b, bi) => {
      const v = Number.isFinite(b.v) ? b.v : 0;
      const bh = (h * v) / max;
      const bx = gx + bi * bw;
      out.push(
        `<rect x="${bx.toFixed(1)}" y="${(y + h - bh).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${bh.toFixed(1)}" fill="${COLORS[g.name][b.shade]}"/>`,
      );
      out.push(
        text(bx + (bw - 2) / 2, y + h - bh - 3, short(b.v), 'font-size="8.5" fill="#111827" text-anchor="middle"'),
      );
    });
    out.push(text(x + gi * gw + gw / 2, y + h + 11, g.name, 'font-size="8.5" fill="#374151" text-anchor="middle"'));
  });
  return out.join('\n');
}

export function chartSvg(results: ScenarioResult[], comps: Comparison[], subtitle: string[]): string {
  const paths = [...new Set(results.map((r) => r.path))];
  const patterns = [...new Set(results.map((r) => `${r.keepAlive ? 'ka' : 'nc'}${r.clients}`))];
  const width = LEFT * 2 + patterns.length * PANEL_W;
  const height = TOP + paths.length * PANEL_H + 30;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    text(
      LEFT,
      24,
      'Metadata request latency and throughput: direct (floor) vs nginx vs agent',
      'font-size="17" font-weight="bold" fill="#111827"',
    ),
  ];
  subtitle.forEach((s, i) => {
    out.push(text(LEFT, 42 + i * 14, s, 'font-size="11" fill="#4b5563"'));
  });
  let lx = LEFT;
  const ly = 42 + subtitle.length * 14 + 4;
  for (const name of ['direct', 'nginx', 'agent'] as TargetName[]) {
    out.push(`<rect x="${lx}" y="${ly - 9}" width="11" height="11" fill="${COLORS[name][0]}"/>`);
    out.push(text(lx + 15, ly, name, 'font-size="11" fill="#111827"'));
    lx += 75;
  }
  out.push(
    text(
      lx + 10,
      ly,
      'latency in µs (lower is better), throughput in requests/s (higher is better); medians across rounds',
      'font-size="11" fill="#4b5563"',
    ),
  );
  results.forEach((r, i) => {
    const col = patterns.indexOf(`${r.keepAlive ? 'ka' : 'nc'}${r.clients}`);
    const row = paths.indexOf(r.path);
    const px = LEFT + col * PANEL_W;
    const py = TOP + row * PANEL_H;
    out.push(
      `<rect x="${px + 2}" y="${py}" width="${PANEL_W - 6}" height="${PANEL_H - 10}" fill="none" stroke="#d1d5db" rx="4"/>`,
    );
    const title = `${r.path} · ${r.keepAlive ? 'keep-alive' : 'new conn per request'} · ${r.clients} client${r.clients > 1 ? 's' : ''}`;
    out.push(text(px + 10, py + 16, title, 'font-size="12" font-weight="bold" fill="#111827"'));
    const v = comps[i]?.agentVsNginx;
    if (v) {
      const x = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : 'n/a');
      const l1 = `agent/nginx added latency: p50 ${x(v.addedP50)}, p99 ${x(v.addedP99)}; req/s ${x(v.throughput)}`;
      const l2 = `agent/nginx whole latency: p50 ${x(v.p50)}, p99 ${x(v.p99)}`;
      out.push(text(px + 10, py + 31, l1, 'font-size="10" fill="#1f2937"'));
      out.push(text(px + 10, py + 44, l2, 'font-size="10" fill="#4b5563"'));
    }
    const targets = (['direct', 'nginx', 'agent'] as TargetName[]).filter((t) => r.targets[t]);
    const metric = (f: (m: Summary) => number) =>
      targets.map((t) => ({ name: t, values: [{ v: f(r.targets[t]!.median), shade: 0 as const }] }));
    const h = PANEL_H - 114;
    out.push(
      bars(
        px + 36,
        py + 72,
        82,
        h,
        'p50 µs',
        metric((m) => m.p50),
      ),
    );
    out.push(
      bars(
        px + 142,
        py + 72,
        82,
        h,
        'p99 µs',
        metric((m) => m.p99),
      ),
    );
    out.push(
      bars(
        px + 250,
        py + 72,
        82,
        h,
        'req/s',
        metric((m) => m.rps),
      ),
    );
  });
  out.push('</svg>');
  return out.join('\n');
}
