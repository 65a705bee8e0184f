import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * Node 24: V8's memory reducer never fires in an idle agent (it keeps judging the allocation rate
 * "high"), so each isolate keeps start-up's young generation and pooled pages, ~9 MiB in all.
 * One last-resort GC per isolate does the reducer's work and unsticks it. Node 20 needs none.
 */
export const HEAP_TRIM = Number(process.versions.node.split('.')[0]) >= 24;
export const HEAP_TRIM_DELAY_MS = 3000;

/** V8's `gc()`, exposed on first use (--expose-gc stays set for later isolates). */
function exposedGc(): ((o?: object) => void) | undefined {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as ((o?: object) => void) | undefined;
}

/** ~25 ms pause (two full GCs); flushes bytecode. */
export function trimHeap(): void {
  exposedGc()?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

/** trimHeap() once, HEAP_TRIM_DELAY_MS from now (unref'd); null where not needed. */
export function scheduleHeapTrim(): NodeJS.Timeout | null {
  return HEAP_TRIM ? setTimeout(trimHeap, HEAP_TRIM_DELAY_MS).unref() : null;
}

/** Bytes in the old generation (old space and large objects) of this thread's isolate. */
export function oldGenerationBytes(): number {
  let n = 0;
  for (const s of v8.getHeapSpaceStatistics())
    if (s.space_name === 'old_space' || s.space_name === 'large_object_space') n += s.space_used_size;
  return n;
}

export const OLD_GARBAGE_CHECK_MS = 60_000;
export const OLD_GARBAGE_LIMIT_BYTES = 1024 * 1024;

/**
 * The main thread's old generation, kept near its live size. The main thread writes the audit log,
 * the status file and polls the host: little allocation, but a steady trickle of it outlives two
 * scavenges (the few seconds between them there) and is promoted. V8 collects the old generation
 * only when it reaches a limit set several MiB above its live size, and its memory reducer does not
 * run while anything allocates, so under load that garbage stayed for the whole soak (25 minutes,
 * no full GC on the main thread: its heap 7.7 → 10.5 MiB, all of it garbage; the agent's RSS rose
 * with it). A check every minute runs one full GC once the old generation has grown `limitBytes`
 * past its size after the last one: 8-13 ms of the main thread under the soak's load, off the request
 * path (the workers serve requests), at most once a minute and, under that load, about once in ten.
 */
export class OldGarbageWatch {
  private baseline: number;
  /** Full GCs this watch ran (for tests and diagnostics). */
  collections = 0;

  constructor(
    private readonly limitBytes = OLD_GARBAGE_LIMIT_BYTES,
    private readonly measure: () => number = oldGenerationBytes,
    private readonly collect: () => void = () => exposedGc()?.(),
  ) {
    this.baseline = measure();
  }

  /** One check: collects when the old generation grew past the limit. True when it collected. */
  check(): boolean {
    const now = this.measure();
    // V8 collected on its own (or live data shrank): a lower size is the new baseline.
    if (now < this.baseline) this.baseline = now;
    if (now - this.baseline < this.limitBytes) return false;
    this.collect();
    this.collections++;
    this.baseline = this.measure();
    return true;
  }

  /** Checks every `everyMs` (unref'd) until the returned timer is cleared. */
  start(everyMs = OLD_GARBAGE_CHECK_MS): NodeJS.Timeout {
    return setInterval(() => this.check(), everyMs).unref();
  }
}
