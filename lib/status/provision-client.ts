import { request } from '../node-http.js';
import { NOTIFY_HEADER, PROVISION_PATH, type ProvisionState, TIME_TICK_HEADER } from './provision-http.js';
import { nowNs } from './provisioning.js';

export interface ProvisionQueryOptions {
  host?: string;
  port?: number;
  /** Seconds to keep polling until finished; 0 = ask once. */
  waitSeconds?: number;
  /** Poll period while waiting. */
  pollMs?: number;
  /** Per-request timeout. */
  requestTimeoutMs?: number;
}

export interface ProvisionQueryResult extends ProvisionState {
  /** False when the agent never answered (not running, wrong port); the message says what was tried. */
  reachable: boolean;
  lastError?: string;
}

/** `--status` exit code: 0 finished, 1 not finished or timed out, 2 finished with an error. */
export function provisionExitCode(r: ProvisionState): 0 | 1 | 2 {
  if (!r.finished) return 1;
  return r.errorMessage.trim() === '' ? 0 : 2;
}

function getOnce(
  host: string,
  port: number,
  tick: bigint,
  notify: boolean,
  timeoutMs: number,
): Promise<ProvisionState> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { Metadata: 'true', [TIME_TICK_HEADER]: tick.toString() };
    if (notify) headers[NOTIFY_HEADER] = 'true';
    const req = request({ host, port, path: PROVISION_PATH, method: 'GET', headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > 64 * 1024) req.destroy(new Error('provision answer larger than 64 KiB'));
        else chunks.push(c);
      });
      res.on('end', () => {
        if (res.statusCode !== 200)
          return reject(new Error(`agent answered HTTP ${res.statusCode} on ${PROVISION_PATH}`));
        try {
          const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Partial<ProvisionState>;
          if (typeof v.finished !== 'boolean') throw new Error('missing "finished"');
          resolve({ finished: v.finished, errorMessage: typeof v.errorMessage === 'string' ? v.errorMessage : '' });
        } catch (err) {
          reject(new Error(`agent sent an unreadable provision state: ${(err as Error).message}`));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Polls the agent's `/provision` until it reports finished or the wait runs out. The first query
 * carries `x-ms-azure-notify` so the agent polls the host at once instead of at its next interval.
 */
export async function queryProvision(o: ProvisionQueryOptions = {}): Promise<ProvisionQueryResult> {
  const host = o.host ?? '127.0.0.1';
  const port = o.port ?? 3080;
  const tick = nowNs();
  const deadline = Date.now() + Math.max(0, o.waitSeconds ?? 0) * 1000;
  let first = true;
  let reachable = false;
  let lastError: string | undefined;
  let last: ProvisionState = { finished: false, errorMessage: '' };
  for (;;) {
    try {
      last = await getOnce(host, port, tick, first, o.requestTimeoutMs ?? 2000);
      reachable = true;
      lastError = undefined;
      first = false;
      if (last.finished) return { ...last, reachable };
    } catch (err) {
      lastError = `cannot query http://${host}:${port}${PROVISION_PATH}: ${(err as Error).message}`;
    }
    const left = deadline - Date.now();
    if (left <= 0) return { ...last, finished: false, reachable, ...(lastError ? { lastError } : {}) };
    await new Promise((r) => setTimeout(r, Math.min(left, o.pollMs ?? 250)));
  }
}
