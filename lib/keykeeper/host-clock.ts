/** The agent's notion of host time, synced from `x-ms-azure-host-date` (fallback `Date`). */
export class HostClock {
  private offsetMs = 0;
  private lastSync: number | null = null;

  constructor(
    private readonly now: () => number,
    private readonly syncIntervalMs: number,
  ) {}

  /** Adopts the host's time from response headers when the last sync is older than the interval. */
  observe(headers: Record<string, string | string[] | undefined>): void {
    const local = this.now();
    if (this.lastSync !== null && local - this.lastSync < this.syncIntervalMs) return;
    // The host's own date header first; `Date` when that is missing or does not parse.
    let host = Number.NaN;
    for (const raw of [headers['x-ms-azure-host-date'], headers.date]) {
      const text = Array.isArray(raw) ? raw[0] : raw;
      if (text) host = Date.parse(text);
      if (Number.isFinite(host)) break;
    }
    if (!Number.isFinite(host)) return;
    this.offsetMs = host - local;
    this.lastSync = local;
  }

  /** Milliseconds to add to local time to get host time. */
  offset(): number {
    return this.offsetMs;
  }

  hostNow(): Date {
    return new Date(this.now() + this.offsetMs);
  }
}
