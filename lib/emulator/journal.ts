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

/** What the request path records; the time and the parsed claims are derived when the journal is read. */
export type JournalRecord = Omit<JournalEntry, 'seq' | 'time' | 'claims'> & { timeMs: number };

/**
 * Bounded, append-only request journal (oldest entries dropped past the limit). A ring: recording a
 * request is a slot write, however full the journal is; formatting its time and parsing its claims
 * header wait until somebody reads it.
 */
export class Journal {
  private ring: (JournalRecord & { seq: number })[] = [];
  /** Index of the oldest entry once the ring is full. */
  private start = 0;
  private nextSeq = 1;
  private readonly limit: number;
  constructor(limit: number) {
    this.limit = Math.max(1, Math.floor(limit));
  }

  /** Records a new entry and returns it for later completion (status, verdict). */
  add(e: JournalRecord): JournalRecord {
    const entry = { seq: this.nextSeq++, ...e };
    if (this.ring.length < this.limit) this.ring.push(entry);
    else {
      this.ring[this.start] = entry;
      this.start = (this.start + 1) % this.limit;
    }
    return entry;
  }

  /** Copies of the entries with `seq > since`, oldest first. */
  read(since = 0): JournalEntry[] {
    const out: JournalEntry[] = [];
    const n = this.ring.length;
    for (let i = 0; i < n; i++) {
      const { timeMs, ...e } = this.ring[(this.start + i) % n]!;
      if (e.seq <= since) continue;
      const headers = e.headers.map((h): [string, string] => [h[0], h[1]]);
      out.push({ ...e, time: new Date(timeMs).toISOString(), headers, claims: parseClaims(headers) });
    }
    return out;
  }

  clear(): void {
    this.ring = [];
    this.start = 0;
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
