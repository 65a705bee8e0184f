import { type EventLoopUtilization, performance } from 'node:perf_hooks';
import { threadLabel } from './labels.js';
import { Counter, type Registry } from './prom.js';

/**
 * How busy the current thread's event loop is (main or one worker): the time it spent running
 * callbacks rather than waiting in the poll, read from libuv's own loop metrics at scrape time
 * (`performance.eventLoopUtilization()`, which in a worker thread reports that worker's loop).
 * `rate(gpa_event_loop_busy_seconds_total[1m])` is the thread's utilisation (1 = saturated), and a
 * stalled loop shows up as busy time.
 *
 * Nothing is sampled between scrapes. A delay monitor (`monitorEventLoopDelay`, prom-client's
 * `nodejs_eventloop_lag_*`) is a repeating timer: at its 10 ms resolution it woke every thread of
 * an idle agent 100 times a second, about 1% of a core on an idle VM for a number nobody was
 * reading. Requests that waited for a busy loop show in the latency histograms.
 */
export class EventLoopBusy {
  private last: EventLoopUtilization = performance.eventLoopUtilization();
  private stopped = false;

  constructor(registry: Registry, thread: number | 'main') {
    const label = { thread: threadLabel(thread) };
    const self = this;
    new Counter({
      name: 'gpa_event_loop_busy_seconds_total',
      help: 'Time the thread spent running callbacks rather than waiting for events, per thread',
      labelNames: ['thread'],
      registers: [registry],
      collect() {
        // libuv's busy and idle times are cumulative; each collect adds what accrued since the last.
        this.inc(label, self.stopped ? 0 : self.takeActiveSeconds());
      },
    });
  }

  private takeActiveSeconds(): number {
    const now = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(now, this.last);
    this.last = now;
    return Math.max(0, delta.active) / 1000;
  }

  /** Stops accruing (call when the thread shuts down); nothing runs in between anyway. */
  stop(): void {
    this.stopped = true;
  }
}
