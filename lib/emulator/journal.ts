import type { Endpoint } from '../keykeeper/index.js';

/** Signature verdict for one request as the host saw it. */
export type SignatureVerdict = 'valid' | 'invalid' | 'missing' | 'exempt';

/** One request the emulator received. */
export interface JournalEntry {
  /** Monotonic sequence number (survives clearJournal, so `since` queries stay meaningful). */
  seq: number;
  time: string;
  endpoint: Endpoint;
  method: string;
  rawTarget: string;
  /** Header pairs exactly as received, in order, names in their original case. */
  headers: [string, string][];
  peer: { address: string; port: number };
  signature: SignatureVerdict;
  /** Parsed `x-ms-azure-host-claims`, or null when absent or not a JSON object. */
  claims: Record<string, unknown> | null;
  /** Status sent; null while pending or when the connection was reset / left hanging. */
  status: number | null;
  bodyLength: number;
  /** A fault that shaped the answer, if any. */
  fault?: string;
}

/** Bounded, append-only request journal (oldest entries dropped past the limit). */
export class Journal {
  private entries: JournalEntry[] = [];
  private nextSeq = 1;
  constructor(private readonly limit: number) {}

  /** Records a new entry and returns it for later completion (status, verdict). */
  add(e: Omit<JournalEntry, 'seq'>): JournalEntry {
    const entry: JournalEntry = { seq: this.nextSeq++, ...e };
    this.entries.push(entry);
    if (this.entries.length > this.limit) this.entries.splice(0, this.entries.length - this.limit);
    return entry;
  }

  /** Copies of the entries with `seq > since`. */
  read(since = 0): JournalEntry[] {
    return this.entries.filter((e) => e.seq > since).map((e) => ({ ...e, headers: e.headers.map((h) => [...h]) }));
  }

  clear(): void {
    this.entries = [];
  }
}

/** Pairs up Node's flat `rawHeaders` list. */
export function headerPairs(raw: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

/** Parses the claims header without trusting it: a JSON object or null. */
export function parseClaims(headers: [string, string][]): Record<string, unknown> | null {
  let value: string | undefined;
  for (const [n, v] of headers) if (n.toLowerCase() === 'x-ms-azure-host-claims') value = v;
  if (value === undefined) return null;
  try {
    const parsed: unknown = JSON.parse(value);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}
