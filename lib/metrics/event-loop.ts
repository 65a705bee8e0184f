import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { threadLabel } from './labels.js';
import { Gauge, type Registry } from './prom.js';

/**
 * Event-loop delay of the current thread (main or one worker), sampled by perf_hooks and read at
 * scrape time. The histogram is reset after each read so each scrape reports the interval since
 * the previous one. perf_hooks measures the loop of the thread that created the monitor. Caveat
 * (Node 20, measured): the first tick after a reset is not recorded, so a stall that begins within
 * one resolution (10 ms) of a scrape is missed; later stalls are.
 */
export class EventLoopLag {
  private readonly h: IntervalHistogram;

  constructor(registry: Registry, thread: number | 'main') {
    this.h = monitorEventLoopDelay({ resolution: 10 });
    this.h.enable();
    const label = { thread: threadLabel(thread) };
    const h = this.h;
    const toSeconds = (ns: number) => (Number.isFinite(ns) ? ns / 1e9 : 0);
    // One collect reads and resets; the other gauges take their values from that read.
    let last = { p50: 0, p99: 0, max: 0 };
    new Gauge({
      name: 'gpa_event_loop_lag_p99_seconds',
      help: 'Event-loop delay 99th percentile since the previous scrape, per thread',
      labelNames: ['thread'],
      registers: [registry],
      collect() {
        last = h.count > 0 ? { p50: h.percentile(50), p99: h.percentile(99), max: h.max } : { p50: 0, p99: 0, max: 0 };
        h.reset();
        this.set(label, toSeconds(last.p99));
      },
    });
    new Gauge({
      name: 'gpa_event_loop_lag_p50_seconds',
      help: 'Event-loop delay median since the previous scrape, per thread',
      labelNames: ['thread'],
      registers: [registry],
      collect() {
        this.set(label, toSeconds(last.p50));
      },
    });
    new Gauge({
      name: 'gpa_event_loop_lag_max_seconds',
      help: 'Event-loop delay maximum since the previous scrape, per thread',
      labelNames: ['thread'],
      registers: [registry],
      collect() {
        this.set(label, toSeconds(last.max));
      },
    });
  }

  /** Stops sampling (call when the thread shuts down). */
  stop(): void {
    this.h.disable();
  }
}
