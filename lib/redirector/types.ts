/** Who made a redirected connect, as the kernel captured it in the caller's context. */
export interface ConnOrigin {
  /** Process id (kernel tgid, initial pid namespace). */
  pid: number;
  /** Thread id of the connecting thread. */
  tid: number;
  /** Real uid (low half of uid_gid). */
  uid: number;
  /** Real gid (high half of uid_gid). */
  gid: number;
  /** The thread's command name at connect time (16 bytes max, kernel-truncated). */
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
  /** Windows only: the caller's logon session id (LUID, all 64 bits). */
  logonId?: bigint;
  /** Windows only: the caller's token is an administrator. */
  isAdmin?: boolean;
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
