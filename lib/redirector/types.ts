/** What every backend captures about a redirected connect, in the caller's context. */
interface ConnOriginBase {
  /** Process id (Linux: kernel tgid, initial pid namespace). */
  pid: number;
  /** Thread id of the connecting thread. */
  tid: number;
  /** The thread's command name at connect time (16 bytes max, kernel-truncated; empty on Windows). */
  comm: string;
  cgroupId: bigint;
  /** Socket cookie of the client socket. */
  cookie: bigint;
  /** The destination the client asked for (IPv4 dotted quad even when reached through ::ffff:). */
  origDst: string;
  origPort: number;
  family: 4 | 6;
  /** An AF_INET6 socket connected to ::ffff:a.b.c.d. */
  viaV4Mapped: boolean;
}

/** Linux: the kernel's ids of the caller, and the executable it ran when it connected. */
export interface LinuxConnOrigin extends ConnOriginBase {
  platform: 'linux';
  /** Real uid (low half of uid_gid). */
  uid: number;
  /** Real gid (high half of uid_gid). */
  gid: number;
  /**
   * The caller's executable at connect time (task->mm->exe_file), as stat() reports st_dev and
   * st_ino. Absent when the kernel could not read it (no mm): then the exe is unknown. An exec after
   * the connect cannot change these, so /proc/<pid>/exe is trusted only while it still matches.
   */
  exeDev?: bigint;
  exeIno?: bigint;
  /** Linux: the process's start time, ns since boot (with pid: a unique process key). */
  startTimeNs?: bigint;
}

/** Windows (eBPF-for-Windows): the caller's logon session instead of numeric ids. */
export interface WindowsConnOrigin extends ConnOriginBase {
  platform: 'win32';
  /** Logon session id (LUID, all 64 bits); map it with logonSessionInfo(). */
  logonId: bigint;
  /** The caller's token is an administrator. */
  isAdmin: boolean;
  /** Synthetic (Windows has none): 0 for an administrator, else 0xfffffffe, so root gates mean "administrator". */
  uid: number;
  gid: number;
}

/** Who made a redirected connect, as the kernel captured it in the caller's context. */
export type ConnOrigin = LinuxConnOrigin | WindowsConnOrigin;

/** A Windows logon session (LsaGetLogonSessionData), the counterpart of a passwd entry. */
export interface LogonSessionInfo {
  userName: string;
  domain: string;
  /** String SID, e.g. S-1-5-18. */
  sid: string;
  /** SECURITY_LOGON_TYPE (2 interactive, 5 service, ...). */
  logonType: number;
}

export interface RedirectorProgram {
  name: string;
  attached: boolean;
  id: number;
}

export interface RedirectorStatus {
  state: 'stopped' | 'running' | 'degraded' | 'failed' | 'unsupported';
  mode: 'links' | 'pinned';
  cgroupPath: string;
  programs: RedirectorProgram[];
  lastError?: { op: string; errno: number; message: string; verifierLog?: string };
  /** Extension: things an operator should know that do not stop redirection (foreign programs, replaced pins). */
  warnings?: string[];
}

export interface RedirectorStartOptions {
  /** cgroup v2 directory to attach to. Default: the cgroup v2 mount root from /proc/self/mountinfo. */
  cgroupPath?: string;
  /** Pinned mode when set (links and maps pinned under bpffs; a crash fails closed). See DEFAULT_PIN_DIR. */
  pinDir?: string;
  /** Exempt this process so its own upstream connects are not redirected. Default true. */
  exemptSelf?: boolean;
  /** Capacity of the 4-tuple map (peak concurrent unconsumed connects). Default 16384. */
  connMapSize?: number;
  /** Extension: the compiled BPF object; default resolved next to the addon (see docs/redirector.md). */
  objectPath?: string;
}

export interface RedirectRule {
  dst: string;
  dstPort: number;
  proxy: string;
  proxyPort: number;
}

export interface SocketEnd {
  address: string;
  port: number;
}

export interface UserInfo {
  name: string;
  /** Extension: primary gid. */
  gid: number;
  /** Primary group first, then supplementary groups, as NSS reports them. */
  groups: { gid: number; name: string | null }[];
}

export interface ProbeResult {
  supported: boolean;
  reasons: string[];
}
