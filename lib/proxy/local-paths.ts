import { answerProvision } from '../status/index.js';
import type { RequestHead } from './request-head.js';
import type { ProxySnapshot } from './types.js';

export interface LocalAnswer {
  status: number;
  body: string;
  code: string;
  contentType: string;
  /** `/provision` asked to be notified while not finished: the key keeper should poll now. */
  notifyKeyKeeper: boolean;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT = 'text/plain; charset=utf-8';

/**
 * The two paths the agent answers itself on a direct (unredirected) connection to its listener
 * (spec section 5). Redirected connections never get here: their requests belong to the host.
 * Returns null for anything else (the caller answers 421).
 *
 * `GET /provision` is answered by lib/status (Metadata header, time tick, notify).
 * `GET /gpa-aggregated-status` is root only: the uid owning the client socket, read from the kernel.
 */
export function answerLocalPath(
  head: RequestHead,
  snapshot: ProxySnapshot,
  peerUid: () => number | null,
): LocalAnswer | null {
  const q = head.target.indexOf('?');
  const path = (q === -1 ? head.target : head.target.slice(0, q)).toLowerCase();
  if (path !== '/provision' && path !== '/gpa-aggregated-status') return null;
  if (head.method !== 'GET') {
    return { status: 405, body: 'only GET\n', code: 'method_not_allowed', contentType: TEXT, notifyKeyKeeper: false };
  }
  if (path === '/provision') {
    const a = answerProvision(snapshot.provision, head.headers);
    return {
      status: a.statusCode,
      body: a.body,
      code: 'local',
      contentType: JSON_TYPE,
      notifyKeyKeeper: a.notifyKeyKeeper,
    };
  }
  if (peerUid() !== 0) {
    return { status: 403, body: 'root only\n', code: 'local', contentType: TEXT, notifyKeyKeeper: false };
  }
  return {
    status: 200,
    body: snapshot.aggregatedStatus,
    code: 'local',
    contentType: JSON_TYPE,
    notifyKeyKeeper: false,
  };
}
