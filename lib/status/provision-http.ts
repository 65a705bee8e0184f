import type { ProvisionSnapshot } from './provisioning.js';

/** Path of the locally answered provisioning query. */
export const PROVISION_PATH = '/provision';
export const TIME_TICK_HEADER = 'x-ms-azure-time-tick';
export const NOTIFY_HEADER = 'x-ms-azure-notify';

/** What `/provision` returns; the field names are the wire names. */
export interface ProvisionState {
  finished: boolean;
  errorMessage: string;
}

export interface ProvisionAnswer {
  statusCode: number;
  body: string;
  /** True when the caller asked to be notified and provisioning is not finished: poke the key keeper to poll now. */
  notifyKeyKeeper: boolean;
}

type HeaderBag = Record<string, string | string[] | undefined> | Iterable<[string, string]>;

function header(headers: HeaderBag, name: string): string | undefined {
  if (Symbol.iterator in headers) {
    let last: string | undefined;
    for (const [k, v] of headers as Iterable<[string, string]>) if (k.toLowerCase() === name) last = v;
    return last;
  }
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === name) return Array.isArray(v) ? v[v.length - 1] : v;
  }
  return undefined;
}

/** Parses a decimal time tick; anything else is 0 (no constraint). */
export function parseTimeTick(v: string | undefined): bigint {
  if (!v || !/^\d{1,30}$/.test(v.trim())) return 0n;
  return BigInt(v.trim());
}

/**
 * Answers `GET /provision` for the data plane, which calls this with the request headers and the
 * main thread's latest snapshot. Finished is reported when provisioning completed at or after the
 * caller's time tick (so a caller that started waiting sees a fresh poll), when it completed at
 * all and the secure channel is latched, or when it gave up (provisionTimeoutSeconds) and is still
 * not ready: finished with an error, whenever the caller started. Decision: unlike the reference agent, a never-finished
 * state with no time tick is not reported finished (its 0 >= 0 comparison would say so).
 */
export function answerProvision(snapshot: ProvisionSnapshot, headers: HeaderBag): ProvisionAnswer {
  const metadata = header(headers, 'metadata');
  if (metadata === undefined || metadata.trim().toLowerCase() !== 'true') {
    return {
      statusCode: 400,
      body: JSON.stringify({ error: 'the Metadata: true header is required on /provision' }),
      notifyKeyKeeper: false,
    };
  }
  const tick = parseTimeTick(header(headers, TIME_TICK_HEADER));
  const done = snapshot.finishedAtNs > 0n;
  const finished = snapshot.gaveUp || (done && (snapshot.finishedAtNs >= tick || snapshot.latched));
  const state: ProvisionState = { finished, errorMessage: snapshot.errorMessage };
  return {
    statusCode: 200,
    body: JSON.stringify(state),
    notifyKeyKeeper: !finished && header(headers, NOTIFY_HEADER) !== undefined,
  };
}
