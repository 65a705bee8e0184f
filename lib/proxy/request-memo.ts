import type { Buffer } from 'node:buffer';
import type { RequestHead } from './request-head.js';
import type { CallerClaims, Decision, ProxySnapshot } from './types.js';

/**
 * The last request head seen, kept so a client that sends the same head again (a poller) skips
 * the parse, and, within the same host-clock second and snapshot, the building and signing of the
 * upstream head: each is a pure function of the head bytes, the caller's claims, the snapshot and
 * the date, so the reused result is the one that would be computed. Only heads of requests without
 * a body, and small ones.
 */
export interface HeadMemo {
  /** The raw head through its blank line (a copy). */
  bytes: Buffer;
  /** Its parse; never modified after parsing. */
  head: RequestHead;
  /** The upstream head last built for it: valid for this snapshot and date only. */
  upstream: { snapshot: ProxySnapshot; date: string; bytes: Buffer; signed: boolean } | null;
}

/** What a caller's requests to one endpoint reuse: the last head and the last decision. */
export interface RequestMemo {
  head: HeadMemo | null;
  /** A decision is a pure function of the snapshot, the claims, the endpoint, the method and the raw target. */
  decision: { snapshot: ProxySnapshot; method: string; target: string; decision: Decision } | null;
}

/** Longest head remembered (bytes); metadata requests are a few hundred. */
export const HEAD_MEMO_MAX = 2048;

/**
 * The memos of one worker. A memo belongs to a caller and an endpoint, not to a connection: the
 * claims resolver returns the very same frozen claims object for every connect of a process it has
 * fully identified (same pid, start time, executable, user, cgroup), so a client that opens a new
 * connection per request (the common metadata pattern) finds its last parse, decision and signed
 * upstream head as a keep-alive client does. Keyed weakly by that object, so a memo lives exactly
 * as long as the resolver keeps the claims (its recent-process table is bounded, 4096 by default,
 * so at most that many memos per endpoint, each a head of at most HEAD_MEMO_MAX bytes and its
 * upstream head). Claims that are not frozen are built for one connection only (degraded, or
 * without the kernel's start time): such a connection gets a memo of its own.
 */
export class RequestMemos {
  private readonly byCaller = new WeakMap<CallerClaims, Map<string, RequestMemo>>();

  /** The memo for a connection of `claims` to `endpoint` (a fresh private one when not shareable). */
  forConnection(claims: CallerClaims | null, endpoint: string | null): RequestMemo {
    if (claims === null || endpoint === null || !Object.isFrozen(claims)) return { head: null, decision: null };
    let byEndpoint = this.byCaller.get(claims);
    if (byEndpoint === undefined) {
      byEndpoint = new Map();
      this.byCaller.set(claims, byEndpoint);
    }
    let memo = byEndpoint.get(endpoint);
    if (memo === undefined) {
      memo = { head: null, decision: null };
      byEndpoint.set(endpoint, memo);
    }
    return memo;
  }
}
