import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

/**
 * prom-client, loaded by the parts this agent uses. The package's entry point requires every
 * module it has (push gateway → https, cluster, OpenTelemetry exemplars), and each data-plane worker
 * thread pays for that module graph in memory (about 2 MiB of RSS at start). The classes come from
 * the same files the entry point re-exports (prom-client 15 has no `exports` map, so these paths
 * are its published layout; the metrics tests fail if they move); the rarely used parts load on
 * first use.
 */
const require = createRequire(import.meta.url);

export const Registry: typeof PromClient.Registry = require('prom-client/lib/registry');
export const Counter: typeof PromClient.Counter = require('prom-client/lib/counter');
export const Gauge: typeof PromClient.Gauge = require('prom-client/lib/gauge');
export type Registry = PromClient.Registry;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export type MetricObjectWithValues<T extends PromClient.MetricValue<string>> = PromClient.MetricObjectWithValues<T>;
export type MetricValue<T extends string> = PromClient.MetricValue<T>;

/**
 * prom-client's default collectors, read at scrape time, minus `eventLoopLag`: that one is a
 * repeating 10 ms timer (see event-loop.ts), and the agent reports its loops' busy time instead.
 */
const DEFAULT_METRICS_WITHOUT_TIMERS = [
  'processCpuTotal',
  'processStartTime',
  'osMemoryHeap',
  'processOpenFileDescriptors',
  'processMaxFileDescriptors',
  'processResources',
  'processHandles',
  'processRequests',
  'heapSizeAndUsed',
  'heapSpacesSizeAndUsed',
  'version',
  'gc',
] as const;

type DefaultMetricsConfig = PromClient.DefaultMetricsCollectorConfiguration<'text/plain; version=0.0.4; charset=utf-8'>;

/** Process metrics (CPU, RSS, fds, heap, GC): the main thread only. */
export function collectDefaultMetrics(config: DefaultMetricsConfig): void {
  for (const name of DEFAULT_METRICS_WITHOUT_TIMERS) {
    // processResources needs process.getActiveResourcesInfo (Node 17+), as prom-client checks too.
    if (name === 'processResources' && typeof process.getActiveResourcesInfo !== 'function') continue;
    const collector = require(`prom-client/lib/metrics/${name}`) as (r: unknown, c: DefaultMetricsConfig) => void;
    collector(config.register, config);
  }
}

/** Merges per-thread metric JSON (prom-client's AggregatorRegistry.aggregate), loaded on first scrape. */
export function aggregate(
  sets: PromClient.MetricObjectWithValues<PromClient.MetricValue<string>>[][],
): PromClient.Registry {
  const AggregatorRegistry = require('prom-client/lib/cluster') as typeof PromClient.AggregatorRegistry;
  return AggregatorRegistry.aggregate(sets);
}
