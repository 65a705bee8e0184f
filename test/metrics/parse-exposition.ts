/** Parses Prometheus text into `name{labels}` → value, for assertions in tests. */
export function parseExposition(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels = m[2] ? canonicalLabels(m[2]) : '';
    out.set(`${m[1]}${labels}`, Number(m[3]));
  }
  return out;
}

/** Sorts labels so lookups do not depend on the order prom-client prints them in. */
export function canonicalLabels(block: string): string {
  const inner = block.slice(1, -1);
  const parts = inner.match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? [];
  return parts.length ? `{${parts.sort().join(',')}}` : '';
}

/** Looks up one series by name and a label object. */
export function series(m: Map<string, number>, name: string, labels: Record<string, string> = {}): number | undefined {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return m.get(parts.length ? `${name}{${parts.sort().join(',')}}` : name);
}
