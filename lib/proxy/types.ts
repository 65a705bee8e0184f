import type { CallerClaims, Decision, Endpoint, Mode, PolicyRequest } from '../policy/index.js';
import type { SigningKey } from '../signing/index.js';
import type { ProvisionSnapshot } from '../status/index.js';
import type { HeadLimits } from './request-head.js';
import type { UpstreamTarget } from './upstream-pool.js';

export type { CallerClaims, Decision, Endpoint, Mode };

/** The kernel's record of who opened a redirected connection (lib/redirector's ConnOrigin). */
export interface ConnOriginLike {
  pid: number;
  tid: number;
  uid: number;
  gid: number;
  comm: string;
  cgroupId: bigint;
  origDst: string;
  origPort: number;
  family: 4 | 6;
}

/** An intercepted endpoint: the original destination it is recognised by, and where to forward. */
export interface EndpointRoute {
  name: Endpoint;
  /** Original destination as the kernel reports it (the metadata address). */
  address: string;
  port: number;
  upstream: UpstreamTarget;
}

/**
 * Everything a request needs from the control plane, captured once when its head arrives, so a
 * snapshot change mid-request never mixes two policies or two keys in one exchange.
 */
export interface ProxySnapshot {
  epoch: number;
  /** Authorizes one request (lib/policy's authorize bound to a compiled snapshot). */
  decide(req: PolicyRequest, caller: CallerClaims): Decision;
  /** The HMAC key, prepared once per key change (in the addon where it can); null while no key is held. */
  key: { guid: string; signingKey: SigningKey } | null;
  /** Host clock minus local clock, for `x-ms-azure-host-date`. */
  hostClockOffsetMs: number;
  /** Readiness answered on `GET /provision` (lib/status ProvisionSnapshot). */
  provision: ProvisionSnapshot;
  /** JSON body of `GET /gpa-aggregated-status` (root only). */
  aggregatedStatus: string;
}

/** One audit record per request; serialized off the response path by lib/audit. */
export interface RequestAuditRecord {
  /** Epoch milliseconds when the request head arrived (formatted by the audit writer, off the hot path). */
  timeMs: number;
  connectionId: number;
  requestId: number;
  caller: CallerClaims | null;
  comm: string | null;
  origDst: string | null;
  endpoint: Endpoint | null;
  method: string;
  target: string;
  /** 'local': the agent answered a path of its own (`/provision`, `/status`), no decision involved. */
  outcome: Decision['outcome'] | 'error' | 'local';
  code: string;
  ruleId: string | null;
  privilege: string | null;
  identity: string | null;
  mode: Mode | null;
  policyEpoch: number;
  status: number;
  elapsedMs: number;
  upstreamMs: number | null;
  signed: boolean;
}

/** What the proxy reports once per finished request (same shape as lib/metrics' RequestDoneRecord). */
export interface RequestDoneInfo {
  endpoint: Endpoint | null;
  outcome: string | null;
  status: number;
  code: string | null;
  attributed: boolean;
  addedSeconds: number | null;
  upstreamSeconds: number | null;
  upstreamError: 'error' | 'timeout' | null;
  audit: 'written' | 'dropped' | null;
}

export interface ProxyTimeouts {
  /** Whole request head must arrive within this (slowloris); also the longest a body may stall. */
  headerMs: number;
  /** An idle keep-alive client connection is closed after this. */
  keepAliveMs: number;
  /** Upstream must start answering within this. */
  responseMs: number;
  connectMs: number;
}

export const DEFAULT_TIMEOUTS: ProxyTimeouts = {
  headerMs: 10_000,
  keepAliveMs: 60_000,
  responseMs: 30_000,
  connectMs: 5_000,
};

export interface BodyLimits {
  /** Every signed request body (spec: 100 KiB). */
  maxBody: number;
  /** The two signature-exempt upload paths, streamed (spec: 100 MiB). */
  maxExemptBody: number;
}

export const DEFAULT_BODY_LIMITS: BodyLimits = { maxBody: 100 * 1024, maxExemptBody: 100 * 1024 * 1024 };

/** What a worker's connections share: configuration, the current snapshot, and the sinks. */
export interface ProxyContext {
  snapshot: ProxySnapshot;
  routes: EndpointRoute[];
  /** Attribution at accept: lib/redirector's lookupConnection with consume. */
  lookup(peer: { address: string; port: number }, local: { address: string; port: number }): ConnOriginLike | null;
  /**
   * The same lookup by the accepted socket's fd (the addon reads the 4-tuple itself: one native call
   * instead of two address getters and a lookup). Absent where sockets have no fd (Windows).
   */
  lookupSocket?: (fd: number) => ConnOriginLike | null;
  /** Claims for an attributed connection (lib/identity). */
  claims(origin: ConnOriginLike): CallerClaims;
  /** Uid owning a direct (unredirected) loopback connection, for root-only local paths; null if unknown. */
  directPeerUid(peer: { address: string; port: number }, local: { address: string; port: number }): number | null;
  audit(record: RequestAuditRecord): 'written' | 'dropped';
  onRequestDone: ((info: RequestDoneInfo) => void) | null;
  headLimits: HeadLimits;
  bodyLimits: BodyLimits;
  timeouts: ProxyTimeouts;
  /** `/provision?notify` while not finished: ask the main thread to poll the host now. */
  notifyKeyKeeper: (() => void) | null;
  /** Set on shutdown: finish the request in flight, then close instead of keeping alive. */
  draining: boolean;
}
