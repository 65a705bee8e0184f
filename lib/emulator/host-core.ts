import type { Endpoint, Mode } from '../keykeeper/index.js';
import type { NativeHmac } from '../signing/index.js';
import { FaultTable } from './faults.js';
import {
  applyPatch,
  defaultSettings,
  type HostKey,
  type HostSettings,
  type HostSettingsPatch,
  hostMode,
  newHostKey,
  statusPayload,
} from './host-state.js';
import { Journal } from './journal.js';

/** A read-only view of the host for tests and the control API (no key bytes). */
export interface HostStateView {
  settings: HostSettings;
  hostModes: Record<Endpoint, Mode>;
  keyIncarnationId: number;
  key: { guid: string; incarnationId: number; attested: boolean } | null;
  status: unknown;
}

/** The emulated host's state: settings, the latched key, journal and faults. Shared by all servers. */
export class HostCore {
  settings: HostSettings = defaultSettings();
  key: HostKey | null = null;
  incarnationId = 1;
  readonly journal: Journal;
  readonly faults = new FaultTable();
  /** Operator-visible notes (e.g. an ignored keyIncarnationId); also passed to the log callback. */
  readonly notes: string[] = [];

  constructor(
    journalLimit: number,
    private readonly log: (msg: string) => void,
    /** Verify with the addon's HMAC-SHA256 instead of node:crypto (the bench's host). */
    private readonly hmac: NativeHmac | null = null,
  ) {
    this.journal = new Journal(journalLimit);
  }

  note(msg: string): void {
    this.notes.push(msg);
    if (this.notes.length > 200) this.notes.shift();
    this.log(msg);
  }

  configure(patch: HostSettingsPatch): HostStateView {
    this.settings = applyPatch(this.settings, patch);
    return this.view();
  }

  /** Owner resets the key: new incarnation and GUID; the old key stops verifying at once. */
  resetKey(incarnationId?: number): { guid: string; incarnationId: number } {
    this.incarnationId = incarnationId ?? this.incarnationId + 1;
    this.key = newHostKey(this.incarnationId, this.hmac);
    return { guid: this.key.guid, incarnationId: this.incarnationId };
  }

  /** The key handed out on acquire: the current one, created on first use. */
  acquireKey(): HostKey {
    if (!this.key) this.key = newHostKey(this.incarnationId, this.hmac);
    return this.key;
  }

  mode(ep: Endpoint): Mode {
    return hostMode(this.settings, ep);
  }

  statusBody(): string {
    return statusPayload(this.settings, this.key, this.incarnationId);
  }

  /** Host time as the host reports it (with the configured skew). */
  hostDate(): Date {
    return new Date(Date.now() + this.settings.clockSkewMs);
  }

  view(): HostStateView {
    return {
      settings: structuredClone(this.settings),
      hostModes: { imds: this.mode('imds'), wireserver: this.mode('wireserver'), hostga: this.mode('hostga') },
      keyIncarnationId: this.incarnationId,
      key: this.key
        ? { guid: this.key.guid, incarnationId: this.key.incarnationId, attested: this.key.attested }
        : null,
      status: JSON.parse(this.statusBody()),
    };
  }
}
