import type { RequestHead } from './request-head.js';
import type { ProxySnapshot } from './types.js';

export interface LocalAnswer {
  status: number;
  body: string;
  code: string;
  contentType: string;
}

const JSON_TYPE = 'application/json; charset=utf-8';

function header(head: RequestHead, name: string): string | undefined {
  for (const [n, v] of head.headers) if (n === name) return v;
  return undefined;
}

/**
 * The two paths the agent answers itself on a direct (unredirected) connection to its listener
 * (spec section 5). Redirected connections never get here: their requests belong to the host.
 * Returns null for anything else (the caller answers 421).
 *
 * `GET /provision` needs a `Metadata` header and returns `{finished, errorMessage}`. The
 * `x-ms-azure-time-tick` and `x-ms-azure-notify` headers are accepted (their values must be visible
 * ASCII like every header) and echoed in the body as `timeTick` / `notify` so a caller can match
 * an answer to its poll; readiness itself comes from the control plane's snapshot.
 * `GET /gpa-aggregated-status` is root only (uid of the socket's owner, read from the kernel).
 */
export function answerLocalPath(
  head: RequestHead,
  snapshot: ProxySnapshot,
  peerUid: () => number | null,
): LocalAnswer | null {
  const q = head.target.indexOf('?');
  const path = (q === -1 ? head.target : head.target.slice(0, q)).toLowerCase();
  if (path === '/provision') {
    if (head.method !== 'GET')
      return { status: 405, body: 'only GET\n', code: 'LOCAL_METHOD', contentType: 'text/plain' };
    if (header(head, 'metadata') === undefined) {
      return {
        status: 400,
        body: 'the Metadata header is required\n',
        code: 'LOCAL_NO_METADATA',
        contentType: 'text/plain',
      };
    }
    const body: Record<string, unknown> = {
      finished: snapshot.provision.finished,
      errorMessage: snapshot.provision.errorMessage,
    };
    const tick = header(head, 'x-ms-azure-time-tick');
    if (tick !== undefined) body.timeTick = tick;
    const notify = header(head, 'x-ms-azure-notify');
    if (notify !== undefined) body.notify = notify;
    return { status: 200, body: JSON.stringify(body), code: 'LOCAL_PROVISION', contentType: JSON_TYPE };
  }
  if (path === '/gpa-aggregated-status') {
    if (head.method !== 'GET')
      return { status: 405, body: 'only GET\n', code: 'LOCAL_METHOD', contentType: 'text/plain' };
    if (peerUid() !== 0) return { status: 403, body: 'root only\n', code: 'LOCAL_NOT_ROOT', contentType: 'text/plain' };
    return { status: 200, body: snapshot.aggregatedStatus, code: 'LOCAL_STATUS', contentType: JSON_TYPE };
  }
  return null;
}
