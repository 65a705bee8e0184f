import type { Buffer } from 'node:buffer';

/** The three metadata endpoints the secure channel governs. */
export type Endpoint = 'imds' | 'wireserver' | 'hostga';
/** Per-endpoint protection mode; an endpoint is redirected iff its mode is not `disabled`. */
export type Mode = 'disabled' | 'audit' | 'enforce';

export const ENDPOINTS: readonly Endpoint[] = ['imds', 'wireserver', 'hostga'];

/** The latched key: 32 HMAC bytes and the GUID the host knows it by. */
export interface LatchedKey {
  guid: string;
  incarnationId: number | null;
  bytes: Buffer;
}

/** The one immutable view of secure-channel state that every other part reads. */
export interface KeySnapshot {
  /** Increments on every published change. */
  epoch: number;
  key?: LatchedKey;
  /** hostga always follows wireserver. */
  modes: Record<Endpoint, Mode>;
  /** Raw authorizationRules items as the host sent them. */
  rules: Partial<Record<Endpoint, unknown>>;
  ruleIds: Record<Endpoint, string | null>;
  /** The reported state string of spec section 2. */
  secureChannelState: string;
  health: 'unknown' | 'ok' | 'degraded';
  statusMessage: string;
  keyIncarnationId: number | null;
}
