/** The redirector lifecycle and map access, over the addon's process-wide backend. */
import { existsSync, readFileSync } from 'node:fs';
import type { ProcessSnapshotReader } from '../identity/proc.js';
import type { NativeHmac } from '../signing/index.js';
import { normaliseAddress, requireLoopbackProxy, ruleAddress, rulePort } from './addresses.js';
import { cgroupId, discoverCgroup2Root, inPidNamespace, isCgroup2Dir, ownCgroupDir } from './cgroup.js';
import { asRedirectorError, RedirectorError } from './errors.js';
import {
  type AddonStartOptions,
  addonLoadError,
  bpfObjectPath,
  type ClientSocketIo,
  type NativeAddon,
  tryLoadAddon,
} from './native.js';
import { OriginRecord } from './origin-record.js';
import type {
  ConnOrigin,
  LogonSessionInfo,
  ProbeResult,
  RedirectorStartOptions,
  RedirectorStatus,
  RedirectRule,
  SocketEnd,
  UserInfo,
} from './types.js';

/** Where the agent pins links and maps in production. */
export const DEFAULT_PIN_DIR = '/sys/fs/bpf/guest-proxy-agent';
export const DEFAULT_CONN_MAP_SIZE = 16384;

// A status decided here without reaching the kernel (unsupported, bad cgroup path, failed self-test).
let localStatus: RedirectorStatus | undefined;

function addon(op: string): NativeAddon {
  const a = tryLoadAddon();
  if (!a) throw new RedirectorError(op, addonLoadError() ?? 'addon not available');
  return a;
}

function capEffective(): bigint {
  try {
    const line = readFileSync('/proc/self/status', 'utf8')
      .split('\n')
      .find((l: string) => l.startsWith('CapEff:'));
    return line ? BigInt(`0x${line.slice(7).trim()}`) : 0n;
  } catch {
    return 0n;
  }
}

/** Whether this machine and process can run the redirector; no lasting side effects. */
export function probe(): ProbeResult {
  const reasons: string[] = [];
  if (process.platform !== 'linux' && process.platform !== 'win32') {
    return { supported: false, reasons: [`platform ${process.platform} has no redirector backend`] };
  }
  if (process.platform === 'linux') {
    const caps = capEffective();
    const has = (bit: number) => (caps & (1n << BigInt(bit))) !== 0n;
    if (!(has(21) || (has(39) && has(12)))) {
      reasons.push('needs root (or CAP_BPF and CAP_NET_ADMIN): run the agent as root');
    }
    if (!discoverCgroup2Root())
      reasons.push('no cgroup v2 mount in /proc/self/mountinfo: mount cgroup2 or boot with it');
    if (!existsSync(bpfObjectPath())) reasons.push(`BPF object ${bpfObjectPath()} is missing: run npm run build`);
  }
  const a = tryLoadAddon();
  if (!a) {
    reasons.push(addonLoadError() ?? 'addon not available');
  } else if (reasons.length === 0) {
    reasons.push(...a.probeKernel().reasons);
  }
  return { supported: reasons.length === 0, reasons };
}

function stoppedStatus(cgroupPath: string, pinned: boolean): RedirectorStatus {
  return { state: 'stopped', mode: pinned ? 'pinned' : 'links', cgroupPath, programs: [] };
}

/** Facts about the host `addonStartOptions` decides on; read from the system by `start()`. */
export interface StartHost {
  platform: NodeJS.Platform;
  pid: number;
  /** Linux only: the cgroup v2 mount root, and whether a path is a cgroup v2 directory. */
  cgroup2Root(): string | undefined;
  isCgroup2Dir(dir: string): boolean;
  inPidNamespace(): boolean;
  ownCgroupDir(mount: string): string | undefined;
  cgroupId(dir: string): bigint;
  objectPath(): string;
}

const SYSTEM: StartHost = {
  platform: process.platform,
  pid: process.pid,
  cgroup2Root: () => discoverCgroup2Root(),
  isCgroup2Dir,
  inPidNamespace: () => inPidNamespace(),
  ownCgroupDir,
  cgroupId,
  objectPath: () => bpfObjectPath(),
};

/** The cgroup the programs attach to (Windows: none, the default network compartment). */
function attachCgroupPath(opts: RedirectorStartOptions, host: StartHost): string {
  return host.platform === 'win32' ? '' : (opts.cgroupPath ?? host.cgroup2Root() ?? '');
}

/**
 * The addon's start options for this host, or why it cannot start (`op`, `message`). Linux attaches
 * to a cgroup v2 directory and exempts the agent by pid, or by its own cgroup when it runs in a pid
 * namespace (its pid there is not the one the programs see). Windows has no cgroups: the program
 * attaches to the default network compartment and the agent is exempted by pid.
 */
export function addonStartOptions(
  opts: RedirectorStartOptions,
  host: StartHost = SYSTEM,
): { ok: AddonStartOptions } | { op: string; message: string } {
  const windows = host.platform === 'win32';
  const cgroupPath = attachCgroupPath(opts, host);
  if (!windows && (!cgroupPath || !host.isCgroup2Dir(cgroupPath))) {
    return {
      op: 'open cgroup',
      message: `cgroupPath '${cgroupPath}' is not a cgroup v2 directory: pass a directory under the cgroup2 mount`,
    };
  }
  const connMapSize = opts.connMapSize ?? DEFAULT_CONN_MAP_SIZE;
  if (!Number.isInteger(connMapSize) || connMapSize < 64 || connMapSize > 1 << 24) {
    return { op: 'start', message: `connMapSize ${connMapSize} must be an integer in 64..16777216` };
  }
  let exemptPid = 0;
  let exemptCgroupId = 0n;
  if (opts.exemptSelf ?? true) {
    if (windows || !host.inPidNamespace()) {
      exemptPid = host.pid;
    } else {
      // Our pid here is not the kernel tgid the programs see: exempt our own cgroup instead, which is
      // safe only when that cgroup holds nothing but the agent (never the attach point or the root).
      const mount = host.cgroup2Root() ?? '';
      const own = host.ownCgroupDir(mount);
      if (!own || own === mount || own === cgroupPath) {
        return {
          op: 'exempt',
          message:
            'the agent runs in a pid namespace and its cgroup is shared with clients; run it in its own cgroup (e.g. a systemd service) or outside the pid namespace',
        };
      }
      exemptCgroupId = host.cgroupId(own);
    }
  }
  return {
    ok: {
      objectPath: opts.objectPath ?? host.objectPath(),
      cgroupPath,
      pinDir: opts.pinDir ?? '',
      connMapSize,
      exemptPid,
      exemptCgroupId,
    },
  };
}

/** Loads and attaches the programs. Failures come back as status (failed/unsupported), not throws. */
export function start(opts: RedirectorStartOptions = {}): RedirectorStatus {
  localStatus = undefined;
  const pinned = !!opts.pinDir;
  const cgroupPath = attachCgroupPath(opts, SYSTEM);
  const p = probe();
  if (!p.supported) {
    return (localStatus = {
      ...stoppedStatus(cgroupPath, pinned),
      state: 'unsupported',
      lastError: { op: 'probe', errno: 0, message: p.reasons.join('; ') },
    });
  }
  const prepared = addonStartOptions(opts);
  if (!('ok' in prepared)) {
    return (localStatus = {
      ...stoppedStatus(cgroupPath, pinned),
      state: 'failed',
      lastError: { op: prepared.op, errno: 0, message: prepared.message },
    });
  }
  try {
    return addon('start').start(prepared.ok);
  } catch (err) {
    throw asRedirectorError(err, 'start');
  }
}

/** Detaches (links mode) or leaves pins in place (pinned mode) unless `unpin`, which removes them. */
export function stop(opts: { unpin?: boolean } = {}): void {
  localStatus = undefined;
  const a = tryLoadAddon();
  if (a) a.stop(!!opts.unpin);
}

export function status(): RedirectorStatus {
  if (localStatus) return localStatus;
  const a = tryLoadAddon();
  if (!a) {
    return {
      state: 'unsupported',
      mode: 'links',
      cgroupPath: '',
      programs: [],
      lastError: { op: 'load addon', errno: 0, message: addonLoadError() ?? '' },
    };
  }
  return a.status();
}

/** Marks the redirector failed in this thread's status() (used by selfTest). */
export function markFailed(op: string, message: string): void {
  const s = status();
  localStatus = { ...s, state: 'failed', lastError: { op, errno: 0, message } };
}

/** Redirect TCP connects to dst:dstPort to proxy:proxyPort (same family). */
export function setRule(rule: RedirectRule): void {
  const dst = ruleAddress('dst', rule.dst);
  const proxy = ruleAddress('proxy', rule.proxy);
  if (dst.family !== proxy.family) {
    throw new RedirectorError('setRule', `dst ${rule.dst} and proxy ${rule.proxy} must be the same address family`);
  }
  requireLoopbackProxy(proxy, rule.proxy);
  const a = addon('setRule');
  try {
    a.setRule(dst.address, rulePort('dstPort', rule.dstPort), proxy.address, rulePort('proxyPort', rule.proxyPort));
  } catch (err) {
    throw asRedirectorError(err, 'setRule');
  }
}

export function removeRule(dst: string, dstPort: number): boolean {
  const d = ruleAddress('dst', dst);
  try {
    return addon('removeRule').removeRule(d.address, rulePort('dstPort', dstPort));
  } catch (err) {
    throw asRedirectorError(err, 'removeRule');
  }
}

export function listRules(): RedirectRule[] {
  try {
    return addon('listRules').listRules();
  } catch (err) {
    throw asRedirectorError(err, 'listRules');
  }
}

export function addExemptPid(pid: number): void {
  try {
    addon('addExemptPid').addExemptPid(pid);
  } catch (err) {
    throw asRedirectorError(err, 'addExemptPid');
  }
}

export function removeExemptPid(pid: number): boolean {
  try {
    return addon('removeExemptPid').removeExemptPid(pid);
  } catch (err) {
    throw asRedirectorError(err, 'removeExemptPid');
  }
}

/**
 * Who opened the accepted connection `peer` -> `local`, or null (deny). `consume` (default true)
 * deletes the record in the same syscall so it can be used once only.
 */
export function lookupConnection(peer: SocketEnd, local: SocketEnd, opts?: { consume?: boolean }): ConnOrigin | null {
  const a = addon('lookupConnection');
  const o = a.lookupConnection(
    normaliseAddress(peer.address),
    peer.port,
    normaliseAddress(local.address),
    local.port,
    opts?.consume ?? true,
  );
  if (o === null) return null;
  return o as ConnOrigin;
}

/** The addon's client-socket I/O (Linux builds), or null where it has none or cannot load. */
export function clientSocketIo(): ClientSocketIo | null {
  const a = tryLoadAddon();
  return a !== undefined && typeof a.ioListen === 'function' ? (a as unknown as ClientSocketIo) : null;
}

/** The addon's HMAC-SHA256 (Linux builds), or null where it has none or cannot load. */
export function nativeHmac(): NativeHmac | null {
  const a = tryLoadAddon();
  return a !== undefined && a.hmacSha256Available === true ? (a as unknown as NativeHmac) : null;
}

/**
 * The addon's reader of a new caller's /proc facts (Linux builds; lib/identity's
 * `ProcessSnapshotReader`), or null where it has none: the claims then read them with node:fs.
 */
export function processSnapshotReader(): ProcessSnapshotReader | null {
  const a = tryLoadAddon() as { procSnapshot?: (pid: number) => NativeProcSnapshot | null } | undefined;
  const read = a?.procSnapshot;
  if (typeof read !== 'function') return null;
  return (pid) => {
    const s = read.call(a, pid);
    if (s === null) return null;
    return { startTime: s[0], exeDev: s[1], exeIno: s[2], exePath: s[3], rawCmdline: s[4], cgroup: s[5], stable: s[6] };
  };
}

/** The addon's `procSnapshot` answer, in `ProcessSnapshot`'s field order. */
type NativeProcSnapshot = [string, bigint, bigint, string | null, string, string, boolean];

/** True when the addon can look a connection up by the accepted socket's fd (POSIX builds). */
export function socketLookupSupported(): boolean {
  return typeof tryLoadAddon()?.lookupSocket === 'function';
}

/** This thread's record buffer for lookupSocketInto (created on first use). */
let record: OriginRecord | undefined;

/**
 * lookupConnection for an accepted socket given by its file descriptor: the addon reads the
 * 4-tuple (getpeername/getsockname) itself, one native call on the accept path. Null when the
 * connection has no record or is already gone. Only where socketLookupSupported().
 */
export function lookupSocket(fd: number, opts?: { consume?: boolean }): ConnOrigin | null {
  const a = addon('lookupSocket');
  const consume = opts?.consume ?? true;
  if (a.lookupSocketInto !== undefined) {
    record ??= new OriginRecord();
    return a.lookupSocketInto(fd, consume, record.bytes) === 1 ? record.decode() : null;
  }
  if (a.lookupSocket === undefined)
    throw new RedirectorError('lookupSocket', 'this build of the addon cannot look connections up by fd');
  const o = a.lookupSocket(fd, consume);
  return o === null ? null : (o as ConnOrigin);
}

/** Kernel counters (summed over CPUs) plus conn_entries (by_conn occupancy) and conn_map_size. */
export function stats(): Record<string, bigint> {
  try {
    return addon('stats').stats();
  } catch (err) {
    throw asRedirectorError(err, 'stats');
  }
}

/** The user and their groups through the system (NSS: files, LDAP, SSSD...); null if unknown. */
export function userInfo(uid: number): UserInfo | null {
  return addon('userInfo').userInfo(uid);
}

/**
 * Windows: the logon session behind a ConnOrigin.logonId (user, domain, SID), or null when it is
 * gone or LSA refuses. Always null on Linux, which has no logon sessions.
 */
export function logonSessionInfo(logonId: bigint): LogonSessionInfo | null {
  const a = addon('logonSessionInfo');
  return a.logonSessionInfo ? a.logonSessionInfo(logonId) : null;
}

/** A group's name through the system, or null if unknown. */
export function groupName(gid: number): string | null {
  return addon('groupName').groupName(gid);
}

/**
 * A listening TCP socket with SO_REUSEPORT; pass the fd to `server.listen({ fd })` in each worker.
 * Node 20 ignores `reusePort`, so workers sharing a port need this.
 */
export function createReusePortListener(host: string, port: number, backlog = 511): number {
  try {
    return addon('createReusePortListener').createReusePortListener(host, port, backlog);
  } catch (err) {
    throw asRedirectorError(err, 'createReusePortListener');
  }
}

/** Gives free malloc memory (all arenas) back to the OS; false without the addon or glibc. */
export function trimNativeHeap(): boolean {
  return tryLoadAddon()?.trimNativeHeap?.() ?? false;
}

/** Struct sizes as the addon's compiler laid them out (tests compare with STRUCT_SIZES). */
export function nativeLayoutSizes(): { endpoint: number; origin: number; connKey: number } {
  return addon('layoutSizes').layoutSizes;
}
