import { type LogonSessionInfo, logonSessionInfo } from '../redirector/index.js';
import type { CallerClaims, OriginFacts } from './claims.js';

/** Logon id -> session; null when the session is gone or LSA refuses. */
export type LogonLookup = (logonId: bigint) => LogonSessionInfo | null;

/** Windows user names are `DOMAIN\user` (the form rules and audit records use). */
export function windowsUserName(s: LogonSessionInfo): string {
  return s.domain ? `${s.domain}\\${s.userName}` : s.userName;
}

/**
 * Claims for a Windows caller: the kernel captured the logon id and whether the token is an
 * administrator; the logon session gives the user name and SID. There is no /proc: the executable
 * is unknown to this backend, and numeric uid/gid are the synthetic ones the addon reports
 * (0 only for an administrator), so a root gate means "administrator".
 */
export function windowsClaims(o: OriginFacts, lookup: LogonLookup = logonSessionInfo): CallerClaims {
  const isAdmin = o.isAdmin === true;
  let session: LogonSessionInfo | null = null;
  if (o.logonId !== undefined) {
    try {
      session = lookup(o.logonId);
    } catch {
      session = null;
    }
  }
  const uid = isAdmin ? 0 : o.uid === 0 ? 0xfffffffe : o.uid;
  return {
    pid: o.pid,
    uid,
    gid: uid,
    userName: session ? windowsUserName(session) : null,
    groups: [],
    exePath: null,
    processName: o.comm,
    cmdline: '',
    cgroupId: o.cgroupId,
    containerId: null,
    degraded: session === null ? 'logon-session-unknown' : null,
    ...(o.logonId !== undefined ? { logonId: o.logonId } : {}),
    isAdmin,
    ...(session ? { sid: session.sid } : {}),
  };
}
