import { EventEmitter } from 'node:events';
import { HostClock } from './host-clock.js';
import { type KeyRecord, KeyStore, parseKeyRecord, toLatchedKey } from './key-store.js';
import { type DerivedState, deriveState, needsKey } from './modes.js';
import { parseStatus, type SecureChannelStatus } from './status-parse.js';
import type { KeySnapshot, LatchedKey } from './types.js';
import { type WireTarget, wireCall } from './wire-client.js';

export interface KeyKeeperOptions {
  /** Where WireServer is (the real 168.63.129.16:80, or an emulator). */
  wireserver: { host: string; port: number };
  /** `latchKeyFolder`: root-owned, 0700. */
  keyFolder: string;
  hostHeader?: string;
  /** `pollKeyStatusIntervalInSeconds` × 1000 (default 15 s). */
  pollIntervalMs?: number;
  /** Poll interval while the state is still unknown (default 1 s) ... */
  fastPollIntervalMs?: number;
  /** ... during this long after start (default 5 minutes). */
  fastPollWindowMs?: number;
  requestTimeoutMs?: number;
  maxResponseBytes?: number;
  clockSyncIntervalMs?: number;
  now?: () => number;
  onSnapshot?: (snapshot: KeySnapshot) => void;
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

const INITIAL: KeySnapshot = Object.freeze({
  epoch: 0,
  modes: Object.freeze({ imds: 'disabled', wireserver: 'disabled', hostga: 'disabled' }),
  rules: Object.freeze({}),
  ruleIds: Object.freeze({ imds: null, wireserver: null, hostga: null }),
  secureChannelState: 'unknown',
  health: 'unknown',
  statusMessage: 'waiting for the first secure-channel status from WireServer',
  keyIncarnationId: null,
}) as KeySnapshot;

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Buffer.isBuffer(v) && !Object.isFrozen(v)) {
    for (const child of Object.values(v)) deepFreeze(child);
    Object.freeze(v);
  }
  return v;
}

/**
 * The secure-channel state machine (spec section 2). It is the only writer of per-endpoint modes:
 * it publishes one immutable KeySnapshot per change, via `onSnapshot` / the 'snapshot' event.
 */
export class KeyKeeper extends EventEmitter {
  private snapshot: KeySnapshot = INITIAL;
  private previousGuid: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<KeySnapshot> | null = null;
  private stopped = true;
  private everSucceeded = false;
  private startedAt = 0;
  private readonly store: KeyStore;
  private readonly clock: HostClock;
  private readonly target: WireTarget;
  private readonly now: () => number;

  constructor(private readonly opts: KeyKeeperOptions) {
    super();
    this.now = opts.now ?? Date.now;
    this.store = new KeyStore(opts.keyFolder, (m) => opts.log?.('warn', `key store: ${m}`));
    this.clock = new HostClock(this.now, opts.clockSyncIntervalMs ?? 15 * 60_000);
    this.target = {
      host: opts.wireserver.host,
      port: opts.wireserver.port,
      hostHeader: opts.hostHeader ?? '168.63.129.16',
      timeoutMs: opts.requestTimeoutMs ?? 10_000,
      maxResponseBytes: opts.maxResponseBytes ?? 4 * 1024 * 1024,
    };
    if (opts.onSnapshot) this.on('snapshot', opts.onSnapshot);
  }

  /** The latest published snapshot. */
  current(): KeySnapshot {
    return this.snapshot;
  }

  /** Host-synced time, for the signer's `x-ms-azure-host-date`. */
  hostNow(): Date {
    return this.clock.hostNow();
  }

  clockOffsetMs(): number {
    return this.clock.offset();
  }

  /** Polls now, then on the schedule: 1 s while unknown in the first 5 minutes, else the poll interval. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.startedAt = this.now();
    this.store.ensureFolder();
    void this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.inFlight?.catch(() => {});
  }

  private async loop(): Promise<void> {
    await this.pollOnce();
    if (this.stopped) return;
    const fast = !this.everSucceeded && this.now() - this.startedAt < (this.opts.fastPollWindowMs ?? 300_000);
    const delay = fast ? (this.opts.fastPollIntervalMs ?? 1000) : (this.opts.pollIntervalMs ?? 15_000);
    this.timer = setTimeout(() => void this.loop(), delay);
    this.timer.unref();
  }

  /** One poll (serialized). Never throws: failures become a 'degraded' snapshot keeping the last good state. */
  pollOnce(): Promise<KeySnapshot> {
    if (!this.inFlight) {
      this.inFlight = this.poll().finally(() => {
        this.inFlight = null;
      });
    }
    return this.inFlight;
  }

  private async poll(): Promise<KeySnapshot> {
    let status: SecureChannelStatus;
    try {
      const res = await wireCall(this.target, 'GET', '/secure-channel/status', this.hostNow());
      this.clock.observe(res.headers);
      if (res.status < 200 || res.status > 299)
        throw new Error(`GET /secure-channel/status returned HTTP ${res.status}`);
      const parsed = parseStatus(res.body, res.headers['content-type'] as string | undefined);
      if (!parsed.ok) throw new Error(parsed.message);
      status = parsed.status;
      const derived = deriveState(status);
      const key = needsKey(derived.modes) ? await this.ensureKey(status) : undefined;
      this.everSucceeded = true;
      return this.publishGood(derived, key, status);
    } catch (err) {
      return this.publishFailure((err as Error).message ?? String(err));
    }
  }

  private async ensureKey(status: SecureChannelStatus): Promise<LatchedKey> {
    const held = this.snapshot.key;
    if (held && status.keyGuid && held.guid.toLowerCase() === status.keyGuid.toLowerCase()) return held;
    if (status.keyGuid) {
      const stored = this.store.read(status.keyGuid);
      if (stored) return this.adopt(stored, 'reused the stored key');
    }
    return this.acquire();
  }

  /** acquire → store → re-read → attest; only then is the key used. */
  private async acquire(): Promise<LatchedKey> {
    const res = await wireCall(this.target, 'POST', '/secure-channel/key', this.hostNow(), {
      body: '{"authorizationScheme": "Azure-HMAC-SHA256"}',
      contentType: 'application/json',
    });
    if (res.status !== 200) throw new Error(`POST /secure-channel/key returned HTTP ${res.status}`);
    const rec = parseKeyRecord(res.body, 'POST /secure-channel/key');
    this.store.write(rec);
    const reread = this.store.read(rec.guid);
    if (!reread || reread.key.toLowerCase() !== rec.key.toLowerCase()) {
      this.store.remove(rec.guid);
      throw new Error(`key ${rec.guid} did not read back intact from ${this.store.folder}`);
    }
    const key = toLatchedKey(reread);
    const att = await wireCall(
      this.target,
      'POST',
      `/secure-channel/key/${reread.guid}/key-attestation`,
      this.hostNow(),
      {
        signWith: key,
      },
    ).catch((err: Error) => ({ status: 0, error: err.message }));
    if (att.status !== 200) {
      // An unattested key must not be reused from disk on the next poll.
      this.store.remove(rec.guid);
      throw new Error(`key attestation for ${rec.guid} failed (${'error' in att ? att.error : `HTTP ${att.status}`})`);
    }
    return this.adopt(reread, 'acquired and attested a new key');
  }

  private adopt(rec: KeyRecord, how: string): LatchedKey {
    const held = this.snapshot.key;
    if (held && held.guid !== rec.guid) this.previousGuid = held.guid;
    this.opts.log?.('info', `secure channel: ${how} ${rec.guid} (incarnation ${rec.incarnationId})`);
    return toLatchedKey(rec);
  }

  private publishGood(d: DerivedState, key: LatchedKey | undefined, s: SecureChannelStatus): KeySnapshot {
    if (key) {
      try {
        this.store.prune(key.guid, this.previousGuid);
      } catch (err) {
        this.opts.log?.('warn', `could not prune old key files: ${(err as Error).message}`);
      }
    }
    const statusMessage = key
      ? `secure channel ${d.secureChannelState}; key ${key.guid} (incarnation ${key.incarnationId})`
      : `secure channel ${d.secureChannelState}; no key held`;
    return this.publish({
      key,
      modes: d.modes,
      rules: d.rules,
      ruleIds: d.ruleIds,
      secureChannelState: d.secureChannelState,
      health: 'ok',
      statusMessage,
      keyIncarnationId: s.keyIncarnationId,
    });
  }

  private publishFailure(reason: string): KeySnapshot {
    this.opts.log?.('warn', `secure channel poll failed: ${reason}`);
    const last = this.snapshot;
    return this.publish({
      ...last,
      health: 'degraded',
      statusMessage: this.everSucceeded
        ? `${reason}; keeping the last good key, rules and modes`
        : `${reason}; no good secure-channel status yet: redirects are left as they are and nothing is forwarded until one comes`,
    });
  }

  private publish(next: Omit<KeySnapshot, 'epoch'>): KeySnapshot {
    const prev = this.snapshot;
    const same =
      prev.key?.guid === next.key?.guid &&
      prev.health === next.health &&
      prev.statusMessage === next.statusMessage &&
      prev.secureChannelState === next.secureChannelState &&
      prev.keyIncarnationId === next.keyIncarnationId &&
      JSON.stringify([prev.modes, prev.ruleIds, prev.rules]) === JSON.stringify([next.modes, next.ruleIds, next.rules]);
    if (same) return prev;
    const snap: KeySnapshot = { ...next, epoch: prev.epoch + 1 };
    if (!snap.key) delete snap.key;
    this.snapshot = deepFreeze(snap);
    this.emit('snapshot', this.snapshot);
    return this.snapshot;
  }
}

/** Creates a key keeper (call `start()` to begin polling). */
export function createKeyKeeper(opts: KeyKeeperOptions): KeyKeeper {
  return new KeyKeeper(opts);
}
