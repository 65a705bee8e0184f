import { aggregate, type MetricObjectWithValues, type MetricValue } from './prom.js';

/** One thread's metrics as plain JSON (what `Registry.getMetricsAsJSON()` returns). */
export type ThreadMetrics = MetricObjectWithValues<MetricValue<string>>[];

/**
 * Merges the metrics of several threads into one Prometheus text exposition. prom-client 15's
 * `AggregatorRegistry.aggregate` works on plain arrays (it never touches `cluster`), so worker threads
 * can send `getMetricsAsJSON()` through postMessage. Series with the same name and labels are summed
 * (counters, histogram buckets); per-thread series carry a `thread` label so they stay apart.
 */
export async function mergeThreadMetrics(sets: ThreadMetrics[]): Promise<string> {
  const registry = aggregate(sets.filter((s) => Array.isArray(s)));
  return registry.metrics();
}

/** The Prometheus text content type the merged output uses. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
