import type { Endpoint } from '../keykeeper/index.js';

/** What a fault does to a matching request. */
export type FaultKind = 'status' | 'delay' | 'reset' | 'malformed-json' | 'timeout' | 'body';

/** A fault: which requests it hits, what it does, and how many times (until cleared when no count). */
export interface FaultSpec {
  endpoint?: Endpoint | 'any';
  /** Prefix of the raw request target, e.g. `/secure-channel/` or `/metadata/instance`. */
  path?: string;
  method?: string;
  kind: FaultKind;
  /** For `status` (default 503) and `body` (default 200). */
  status?: number;
  /** For `delay`: answer normally after this many milliseconds. */
  delayMs?: number;
  /** For `body`: the exact response body (e.g. a hostile status payload). */
  body?: string;
  contentType?: string;
  count?: number;
}

export interface Fault extends FaultSpec {
  id: number;
}

const KINDS: readonly FaultKind[] = ['status', 'delay', 'reset', 'malformed-json', 'timeout', 'body'];

/** Validates a fault from the control API; throws a message naming the bad field. */
export function validateFault(input: unknown): FaultSpec {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new Error('fault must be an object');
  const f = input as Record<string, unknown>;
  if (!KINDS.includes(f.kind as FaultKind)) throw new Error(`fault.kind must be one of ${KINDS.join(', ')}`);
  if (f.endpoint !== undefined && !['imds', 'wireserver', 'hostga', 'any'].includes(f.endpoint as string)) {
    throw new Error('fault.endpoint must be imds, wireserver, hostga or any');
  }
  for (const k of ['path', 'method', 'body', 'contentType'] as const) {
    if (f[k] !== undefined && typeof f[k] !== 'string') throw new Error(`fault.${k} must be a string`);
  }
  if (
    f.status !== undefined &&
    !(Number.isInteger(f.status) && (f.status as number) >= 100 && (f.status as number) <= 599)
  ) {
    throw new Error('fault.status must be an integer 100..599');
  }
  for (const k of ['delayMs', 'count'] as const) {
    if (f[k] !== undefined && !(Number.isInteger(f[k]) && (f[k] as number) >= 0)) {
      throw new Error(`fault.${k} must be a non-negative integer`);
    }
  }
  return f as unknown as FaultSpec;
}

/** The active faults; the first match wins and uses up one of its count. */
export class FaultTable {
  private faults: Fault[] = [];
  private nextId = 1;

  add(spec: FaultSpec): number {
    const id = this.nextId++;
    const f = validateFault(spec);
    if (f.count !== 0) this.faults.push({ ...f, id });
    return id;
  }

  clear(id?: number): void {
    this.faults = id === undefined ? [] : this.faults.filter((f) => f.id !== id);
  }

  list(): Fault[] {
    return this.faults.map((f) => ({ ...f }));
  }

  /** Finds and consumes the fault for a request, if any. */
  take(endpoint: Endpoint, method: string, rawTarget: string): Fault | undefined {
    if (this.faults.length === 0) return undefined;
    const i = this.faults.findIndex(
      (f) =>
        (f.endpoint === undefined || f.endpoint === 'any' || f.endpoint === endpoint) &&
        (f.method === undefined || f.method.toUpperCase() === method.toUpperCase()) &&
        (f.path === undefined || rawTarget.startsWith(f.path)),
    );
    if (i === -1) return undefined;
    const f = this.faults[i]!;
    if (f.count !== undefined) {
      f.count--;
      if (f.count <= 0) this.faults.splice(i, 1);
    }
    return f;
  }
}
