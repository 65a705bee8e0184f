import type { Buffer } from 'node:buffer';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Endpoint, Mode } from '../keykeeper/index.js';
import { type NativeHmac, SigningKey } from '../signing/index.js';

/** Secure-channel status schema version the host answers with. */
export type PayloadVersion = '1.0' | '2.0';

/** The host's current key for the VM (one at a time; a reset replaces it). */
export interface HostKey {
  guid: string;
  incarnationId: number;
  bytes: Buffer;
  /** The bytes prepared once for HMAC (verifying a request then skips the key import). */
  signingKey: SigningKey;
  issued: string;
  attested: boolean;
}

/** Everything the operator controls about the host's secure channel. */
export interface HostSettings {
  version: PayloadVersion;
  /** v2 `secureChannelEnabled`; for v1 `false` reports `Disabled` whatever `v1State` says. */
  enabled: boolean;
  /** v1 `secureChannelState` text sent when enabled (`Wireserver`, `WireserverAndImds`, ...). */
  v1State: string;
  /** v2 per-endpoint modes; hostga always follows wireserver. */
  modes: { imds: Mode; wireserver: Mode };
  /** authorizationRules items (v2); their `mode` is always replaced by `modes`. */
  rules: Partial<Record<Endpoint, Record<string, unknown>>>;
  keyDeliveryMethod: string;
  /** Added to the host's clock in `x-ms-azure-host-date` / `Date` (to test clock sync). */
  clockSkewMs: number;
}

/** A partial update of the settings; a rules item carrying `mode` also sets that endpoint's mode. */
export interface HostSettingsPatch {
  version?: PayloadVersion;
  enabled?: boolean;
  v1State?: string;
  modes?: Partial<{ imds: Mode; wireserver: Mode }>;
  rules?: Partial<Record<Endpoint, Record<string, unknown> | null>>;
  keyDeliveryMethod?: string;
  clockSkewMs?: number;
}

const MODES: readonly Mode[] = ['disabled', 'audit', 'enforce'];

export function defaultSettings(): HostSettings {
  return {
    version: '2.0',
    enabled: false,
    v1State: 'WireserverAndImds',
    modes: { imds: 'disabled', wireserver: 'disabled' },
    rules: {},
    keyDeliveryMethod: 'http',
    clockSkewMs: 0,
  };
}

function parseMode(value: unknown, what: string): Mode {
  const m = typeof value === 'string' ? value.toLowerCase() : value;
  if (typeof m !== 'string' || !MODES.includes(m as Mode)) {
    throw new Error(`${what} must be one of disabled, audit, enforce (got ${JSON.stringify(value)})`);
  }
  return m as Mode;
}

/** Applies a patch after validating every field; throws a message naming the field on bad input. */
export function applyPatch(current: HostSettings, patch: HostSettingsPatch): HostSettings {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
    throw new Error('settings patch must be a JSON object');
  }
  const next: HostSettings = { ...current, modes: { ...current.modes }, rules: { ...current.rules } };
  if (patch.version !== undefined) {
    if (patch.version !== '1.0' && patch.version !== '2.0') throw new Error('version must be "1.0" or "2.0"');
    next.version = patch.version;
  }
  if (patch.enabled !== undefined) {
    if (typeof patch.enabled !== 'boolean') throw new Error('enabled must be true or false');
    next.enabled = patch.enabled;
  }
  if (patch.v1State !== undefined) {
    if (typeof patch.v1State !== 'string') throw new Error('v1State must be a string');
    next.v1State = patch.v1State;
  }
  if (patch.keyDeliveryMethod !== undefined) {
    if (typeof patch.keyDeliveryMethod !== 'string') throw new Error('keyDeliveryMethod must be a string');
    next.keyDeliveryMethod = patch.keyDeliveryMethod;
  }
  if (patch.clockSkewMs !== undefined) {
    if (!Number.isFinite(patch.clockSkewMs)) throw new Error('clockSkewMs must be a number');
    next.clockSkewMs = patch.clockSkewMs;
  }
  if (patch.rules !== undefined) {
    if (typeof patch.rules !== 'object' || patch.rules === null) throw new Error('rules must be an object');
    for (const [ep, item] of Object.entries(patch.rules)) {
      if (ep !== 'imds' && ep !== 'wireserver' && ep !== 'hostga') throw new Error(`rules.${ep}: unknown endpoint`);
      if (item === null) {
        delete next.rules[ep];
        continue;
      }
      if (typeof item !== 'object' || Array.isArray(item)) throw new Error(`rules.${ep} must be an object or null`);
      next.rules[ep] = item;
      if (item.mode !== undefined && ep !== 'hostga') next.modes[ep] = parseMode(item.mode, `rules.${ep}.mode`);
    }
  }
  if (patch.modes !== undefined) {
    if (typeof patch.modes !== 'object' || patch.modes === null) throw new Error('modes must be an object');
    for (const [ep, mode] of Object.entries(patch.modes)) {
      if (ep !== 'imds' && ep !== 'wireserver') throw new Error(`modes.${ep}: only imds and wireserver have a mode`);
      next.modes[ep] = parseMode(mode, `modes.${ep}`);
    }
  }
  return next;
}

/** The mode the host itself applies to an endpoint (what decides 401 for unsigned requests). */
export function hostMode(s: HostSettings, ep: Endpoint): Mode {
  if (!s.enabled) return 'disabled';
  const target = ep === 'hostga' ? 'wireserver' : ep;
  if (s.version === '2.0') return s.modes[target];
  const v1 = s.v1State.toLowerCase();
  if (v1 === 'wireserverandimds') return 'enforce';
  if (v1 === 'wireserver') return target === 'wireserver' ? 'enforce' : 'audit';
  if (v1 === 'audit') return 'audit';
  return 'disabled';
}

/** Creates a fresh host key for an incarnation; `hmac` verifies with the addon's HMAC-SHA256. */
export function newHostKey(incarnationId: number, hmac: NativeHmac | null = null): HostKey {
  const bytes = randomBytes(32);
  return {
    guid: randomUUID(),
    incarnationId,
    bytes,
    signingKey: new SigningKey(bytes, hmac),
    issued: new Date().toISOString(),
    attested: false,
  };
}

/** The key JSON of spec section 2 (acquire response and on-disk format). */
export function keyJson(k: HostKey): string {
  return JSON.stringify({
    authorizationScheme: 'Azure-HMAC-SHA256',
    incarnationId: k.incarnationId,
    guid: k.guid,
    issued: k.issued,
    key: k.bytes.toString('hex'),
  });
}

function ruleItem(ep: Endpoint, item: Record<string, unknown> | undefined, mode: Mode): Record<string, unknown> {
  const base = item ?? { defaultAccess: 'allow' };
  const out: Record<string, unknown> = { ...base, mode };
  // A stable id derived from the content, so a rules change shows up as a new rule id.
  if (typeof out.id !== 'string') {
    out.id = `emu-${ep}-` + createHash('sha256').update(JSON.stringify(out)).digest('hex').slice(0, 12);
  }
  return out;
}

/** The `/secure-channel/status` JSON body for the current settings and key. */
export function statusPayload(s: HostSettings, key: HostKey | null, incarnationId: number): string {
  const body: Record<string, unknown> = {
    authorizationScheme: 'Azure-HMAC-SHA256',
    keyDeliveryMethod: s.keyDeliveryMethod,
    keyIncarnationId: key ? key.incarnationId : incarnationId,
    keyGuid: key ? key.guid : null,
    requiredClaimsHeaderPairs: ['isRoot'],
    version: s.version,
  };
  if (s.version === '1.0') {
    body.secureChannelState = s.enabled ? s.v1State : 'Disabled';
    body.authorizationRules = null;
  } else {
    body.secureChannelEnabled = s.enabled;
    const rules: Record<string, unknown> = {
      imds: ruleItem('imds', s.rules.imds, s.modes.imds),
      wireserver: ruleItem('wireserver', s.rules.wireserver, s.modes.wireserver),
    };
    if (s.rules.hostga) rules.hostga = ruleItem('hostga', s.rules.hostga, s.modes.wireserver);
    body.authorizationRules = rules;
  }
  return JSON.stringify(body);
}
