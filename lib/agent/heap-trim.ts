import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * Node 24: V8's memory reducer never fires in an idle agent (it keeps judging the allocation rate
 * "high"), so each isolate keeps start-up's young generation and pooled pages, ~9 MiB in all.
 * One last-resort GC per isolate does the reducer's work and unsticks it. Node 20 needs none.
 */
export const HEAP_TRIM = Number(process.versions.node.split('.')[0]) >= 24;
export const HEAP_TRIM_DELAY_MS = 3000;

/** ~25 ms pause (two full GCs); flushes bytecode. --expose-gc stays set for later isolates. */
export function trimHeap(): void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as ((o: object) => void) | undefined;
  gc?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

/** trimHeap() once, HEAP_TRIM_DELAY_MS from now (unref'd); null where not needed. */
export function scheduleHeapTrim(): NodeJS.Timeout | null {
  return HEAP_TRIM ? setTimeout(trimHeap, HEAP_TRIM_DELAY_MS).unref() : null;
}
