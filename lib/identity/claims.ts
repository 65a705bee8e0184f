import path from 'node:path';
import type { CallerClaims as PolicyCallerClaims } from '../policy/index.js';
import {
  containerIdFromCgroup,
  currentComm,
  type ProcessSnapshotReader,
  readExeIdentity,
  readExeLink,
  readProcessSnapshot,
  readProcFacts,
  readStartTime,
} from './proc.js';
import { redactCmdline } from './redact.js';
import { type LogonLookup, windowsClaims } from './windows.js';

/** The kernel's record of a connect (lib/redirector ConnOrigin; only these fields are read). */
export interface OriginFacts {
  pid: number;
  tid: number;
  uid: number;
  gid: number;
  comm: string;
  cgroupId: bigint;
  /** Absent means Linux (older callers and unit tests pass only the fields above). */
  platform?: 'linux' | 'win32';
  /** Linux: the executable at connect time as stat() reports it; absent when the kernel could not read it. */
  exeDev?: bigint;
  exeIno?: bigint;
  /** Linux: the process's start time in ns since boot, captured by the kernel at connect time. */
  startTimeNs?: bigint;
  /** Windows: logon session and whether its token is an administrator. */
  logonId?: bigint;
  isAdmin?: boolean;
}

/** Who made a request: the policy engine's contract (one declaration), plus extensions. */
export interface CallerClaims extends PolicyCallerClaims {
  /** Extension: container id parsed from the process's cgroup, when it runs in one. */
  containerId: string | null;
  /** Extension: why exe/cmdline are missing ('exited', 'exec-after-connect'), else null. */
  degraded: string | null;
  /** Windows: the caller's logon session (LUID), whether it is an administrator, and its SID. */
  logonId?: bigint;
  isAdmin?: boolean;
  sid?: string;
}

/** NSS user lookup (lib/redirector's userInfo): name and groups, null for an unknown uid. */
export type UserLookup = (uid: number) => { name: string; groups: { gid: number; name: string | null }[] } | null;
export type GroupLookup = (gid: number) => string | null;

export interface ResolverOptions {
  userInfo: UserLookup;
  groupName: GroupLookup;
  /** How long a user's NSS answer is reused (LDAP/SSSD lookups can be slow). */
  userTtlMs?: number;
  /** How long a process's /proc facts are reused for the same (pid, start time, comm). */
  processTtlMs?: number;
  maxEntries?: number;
  /** Windows: logon id -> session (default: lib/redirector's logonSessionInfo). */
  logonSession?: LogonLookup;
  /** Reads a new caller's /proc facts in one call (the addon's `procSnapshot`; default: node:fs). */
  snapshot?: ProcessSnapshotReader;
}

/** Nanoseconds per clock tick of /proc/<pid>/stat (USER_HZ is 100 on Linux). */
const TICK_NS = 10_000_000n;

/**
 * Inserts into one of the resolver's TTL caches. The key moves to the end, so insertion order is
 * expiry order (each cache has one TTL), and the expired entries at the front are dropped first:
 * a cache holds the processes and users seen within its TTL, not every one seen since the last
 * time it filled up (a guest that starts a new metadata client every minute would otherwise keep
 * thousands of dead processes' claims, and their request memos, for days). Amortized O(1): each
 * entry is dropped once. A full cache is still cleared, the hard bound against a connect storm.
 */
function setExpiring<K, V extends { expires: number }>(map: Map<K, V>, key: K, value: V, now: number, max: number) {
  map.delete(key);
  for (const [k, v] of map) {
    if (v.expires > now) break;
    map.delete(k);
  }
  if (map.size >= max) map.clear();
  map.set(key, value);
}

/** The parts of the claims that do not come from /proc. */
type ClaimsBase = Omit<CallerClaims, 'exePath' | 'processName' | 'cmdline' | 'containerId' | 'degraded'>;

/**
 * Claims from their base and their /proc part, field by field: a spread of `base` cost 5.5 µs per
 * new caller (V8's object-clone path), more than everything else in a cache miss but the reads
 * (bench/micro/identity.ts).
 */
function claimsOf(
  base: ClaimsBase,
  exePath: string | null,
  processName: string,
  cmdline: string,
  containerId: string | null,
  degraded: string | null,
): CallerClaims {
  return {
    pid: base.pid,
    uid: base.uid,
    gid: base.gid,
    userName: base.userName,
    groups: base.groups,
    cgroupId: base.cgroupId,
    exePath,
    processName,
    cmdline,
    containerId,
    degraded,
  };
}

interface ProcEntry {
  exePath: string | null;
  cmdline: string;
  containerId: string | null;
  expires: number;
}

/**
 * Turns a kernel connect record into caller claims, right at accept (the client may exit soon).
 * /proc facts are cached by (pid, start time, comm) so a reused pid never inherits a stale
 * identity; the comm the kernel captured at connect time is compared with the current one, and a
 * mismatch (the process exec'd after connecting) drops the exe path rather than trusting the new
 * binary. When the process is gone, the kernel-captured comm is all that is left.
 */
export class ClaimsResolver {
  private readonly users = new Map<number, { value: ReturnType<UserLookup>; expires: number }>();
  private readonly procs = new Map<string, ProcEntry>();
  /**
   * The last full claims per pid, for connects the kernel fully identified (start time and
   * executable). Equal kernel facts, the same cached user answer and unexpired process facts give
   * an equal object: it is returned as is (claims are never modified), so a client that connects
   * again and again costs one comparison, and per-claims caches downstream (audit lines) hit.
   */
  private readonly recent = new Map<
    number,
    Pick<OriginFacts, 'startTimeNs' | 'exeDev' | 'exeIno' | 'uid' | 'gid' | 'cgroupId' | 'comm'> & {
      user: ReturnType<UserLookup>;
      expires: number;
      claims: CallerClaims;
    }
  >();
  private readonly userTtl: number;
  private readonly procTtl: number;
  private readonly max: number;
  private readonly snapshot: ProcessSnapshotReader;

  constructor(private readonly opts: ResolverOptions) {
    this.snapshot = opts.snapshot ?? readProcessSnapshot;
    this.userTtl = opts.userTtlMs ?? 60_000;
    this.procTtl = opts.processTtlMs ?? 30_000;
    this.max = opts.maxEntries ?? 4096;
  }

  /** Entries held per cache (tests; each is bounded by its TTL and by maxEntries). */
  cacheSizes(): { users: number; processes: number; recent: number } {
    return { users: this.users.size, processes: this.procs.size, recent: this.recent.size };
  }

  /** Claims for one attributed connection. Never throws. */
  resolve(o: OriginFacts): CallerClaims {
    if (o.platform === 'win32') return windowsClaims(o, this.opts.logonSession);
    const now = Date.now();
    const user = this.user(o.uid, now);
    const last = this.recent.get(o.pid);
    if (
      last !== undefined &&
      last.expires > now &&
      last.user === user &&
      last.startTimeNs === o.startTimeNs &&
      last.exeDev === o.exeDev &&
      last.exeIno === o.exeIno &&
      last.uid === o.uid &&
      last.gid === o.gid &&
      last.cgroupId === o.cgroupId &&
      last.comm === o.comm &&
      o.startTimeNs !== undefined
    )
      return last.claims;
    const groups = user !== null ? user.groups.slice() : [];
    if (!groups.some((g) => g.gid === o.gid)) groups.push({ gid: o.gid, name: this.safeGroupName(o.gid) });
    const base = {
      pid: o.pid,
      uid: o.uid,
      gid: o.gid,
      userName: user?.name ?? null,
      groups,
      cgroupId: o.cgroupId,
    };
    if (o.exeIno !== undefined && o.exeDev !== undefined) return this.fromKernelExe(base, o, now, user);
    const comm = currentComm(o.pid, o.tid);
    if (comm === null) return this.degraded(base, o, 'exited');
    if (comm !== o.comm) return this.degraded(base, o, 'exec-after-connect');
    const facts = this.process(o.pid, now);
    if (facts === null) return this.degraded(base, o, 'exited');
    if (currentComm(o.pid, o.tid) !== o.comm) return this.degraded(base, o, 'exec-after-connect');
    return this.withProcess(base, o, facts);
  }

  /**
   * The kernel captured the executable (dev, ino) at connect time, so the identity is fixed there:
   * /proc only has to name that file. The facts (is the link really that file? cmdline, container)
   * are cached per process and executable. With the kernel's process start time the key is
   * (pid, start, dev, ino) and a hit reads nothing at all; without it, the start time and the exe
   * link are read from /proc for the key (two small reads). A reused pid, an exec to another binary
   * or (without the start time) a renamed link misses the cache and is checked afresh.
   */
  private fromKernelExe(base: ClaimsBase, o: OriginFacts, now: number, user: ReturnType<UserLookup>): CallerClaims {
    let startTime: string | null;
    let link: string | null = null;
    let key: string;
    if (o.startTimeNs !== undefined) {
      startTime = null; // read (and compared) only on a miss
      key = o.pid + ':' + o.startTimeNs + ':' + o.exeDev + ':' + o.exeIno;
    } else {
      startTime = readStartTime(o.pid);
      link = startTime !== null ? readExeLink(o.pid) : null;
      if (startTime === null || link === null) return this.degraded(base, o, 'exited');
      key = o.pid + ':' + startTime + ':' + o.exeDev + ':' + o.exeIno + ':' + link;
    }
    let entry = this.procs.get(key);
    if (entry === undefined || entry.expires <= now) {
      // /proc's field 22 is the same start time in clock ticks (USER_HZ = 100 on Linux).
      const expected = startTime ?? String(o.startTimeNs! / TICK_NS);
      const snap = this.snapshot(o.pid);
      if (snap === null || snap.startTime !== expected) return this.degraded(base, o, 'exited'); // gone or pid reused
      // The file running now is not the one that connected: it exec'd after connecting.
      if (snap.exeDev !== o.exeDev || snap.exeIno !== o.exeIno) return this.degraded(base, o, 'exec-after-connect');
      // The facts describe this process and file only if it stayed so while they were read.
      if (!snap.stable || (link !== null && readExeLink(o.pid) !== link)) return this.degraded(base, o, 'exited');
      entry = {
        exePath: snap.exePath,
        cmdline: redactCmdline(snap.rawCmdline),
        containerId: containerIdFromCgroup(snap.cgroup),
        expires: now + this.procTtl,
      };
      setExpiring(this.procs, key, entry, now, this.max);
    }
    const claims = this.withProcess(base, o, entry);
    if (o.startTimeNs !== undefined) {
      // Shared by every connection with these facts: frozen, so no consumer can alter another's.
      Object.freeze(claims.groups);
      Object.freeze(claims);
      setExpiring(
        this.recent,
        o.pid,
        {
          startTimeNs: o.startTimeNs,
          exeDev: o.exeDev,
          exeIno: o.exeIno,
          uid: o.uid,
          gid: o.gid,
          cgroupId: o.cgroupId,
          comm: o.comm,
          user,
          expires: entry.expires,
          claims,
        },
        now,
        this.max,
      );
    }
    return claims;
  }

  /** Full claims: the base plus the process facts read from /proc for the kernel-named process. */
  private withProcess(
    base: ClaimsBase,
    o: OriginFacts,
    facts: Pick<ProcEntry, 'exePath' | 'cmdline' | 'containerId'>,
  ): CallerClaims {
    const name = facts.exePath !== null ? path.basename(facts.exePath) : o.comm;
    return claimsOf(base, facts.exePath, name, facts.cmdline, facts.containerId, null);
  }

  private degraded(base: ClaimsBase, o: OriginFacts, why: string): CallerClaims {
    return claimsOf(base, null, redactCmdline(o.comm), '', null, why);
  }

  private process(pid: number, now: number): (ProcEntry & { exeDev: bigint; exeIno: bigint }) | null {
    // The exe is read every time (one readlink, two stats): an exec keeps pid and start time but not the binary.
    const startTime = readStartTime(pid);
    if (startTime === null) return null;
    const exe = readExeIdentity(pid);
    if (exe === null) return null;
    const exePath = exe.path;
    const ids = { exeDev: exe.dev, exeIno: exe.ino };
    const key = pid + ':' + startTime + ':' + exe.dev + ':' + exe.ino + ':' + exePath;
    const hit = this.procs.get(key);
    if (hit !== undefined && hit.expires > now) return { ...hit, ...ids };
    const facts = readProcFacts(pid);
    if (facts === null || facts.startTime !== startTime || facts.exePath !== exePath) return null;
    const entry: ProcEntry = {
      exePath,
      cmdline: redactCmdline(facts.rawCmdline),
      containerId: facts.containerId,
      expires: now + this.procTtl,
    };
    setExpiring(this.procs, key, entry, now, this.max);
    return { ...entry, ...ids };
  }

  private user(uid: number, now: number): ReturnType<UserLookup> {
    const hit = this.users.get(uid);
    if (hit !== undefined && hit.expires > now) return hit.value;
    let value: ReturnType<UserLookup> = null;
    try {
      value = this.opts.userInfo(uid);
    } catch {
      value = null;
    }
    setExpiring(this.users, uid, { value, expires: now + this.userTtl }, now, this.max);
    return value;
  }

  private safeGroupName(gid: number): string | null {
    try {
      return this.opts.groupName(gid);
    } catch {
      return null;
    }
  }
}
