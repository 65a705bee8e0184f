import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { createAgentMetrics, createWorkerMetrics, mergeThreadMetrics } from '../../lib/metrics/index.js';

const dashboard = readFileSync(new URL('../../../docs/grafana-dashboard.json', import.meta.url), 'utf8');
const guide = readFileSync(new URL('../../../docs/operations.md', import.meta.url), 'utf8');

test('every metric the dashboard and the operator guide name is one the agent exports', async () => {
  const main = createAgentMetrics();
  const worker = createWorkerMetrics(0);
  worker.onRequestDone({
    endpoint: 'imds',
    outcome: 'deny',
    status: 403,
    code: 'default_deny',
    addedSeconds: 0.001,
    upstreamSeconds: 0.001,
    attributed: false,
    audit: 'written',
  });
  main.control.onPolicyCompiled({ epoch: 1, failClosed: false, keptPrevious: false, problems: 0 });
  main.control.onHostClock(5);
  main.control.setRedirectorSource(() => ({
    state: 'running',
    programs: [],
    stats: { conn_entries: 1n, conn_map_size: 10n },
  }));
  const text = await mergeThreadMetrics([
    await main.registry.getMetricsAsJSON(),
    await worker.getMetricsAsJSON(),
  ] as never);
  main.close();
  worker.close();
  const exported = new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!));
  const base = (n: string) => n.replace(/_(bucket|sum|count)$/, '');
  const named = new Set(
    [...dashboard.matchAll(/\b(gpa_[a-z0-9_]+)/g), ...guide.matchAll(/`(gpa_[a-z0-9_]+)/g)]
      .map((m) => base(m[1]!))
      .filter((n) => !n.endsWith('_') && n !== 'gpa_process' && n !== 'gpa_nodejs'),
  );
  const missing = [...named].filter((n) => !exported.has(n));
  assert.deepEqual(missing, []);
  assert.ok(named.size >= 20, `only ${named.size} names found`);
});
