import type { ModuleStatus } from './status-document.js';

/**
 * Module status lines for status.json and `/provision` errors. Each says what is wrong and what an
 * operator can do about it, so status.json alone is enough to start troubleshooting.
 */

/** The parts of the redirector's RedirectorStatus this reads. */
export interface RedirectorStatusLike {
  state: string;
  mode?: string;
  cgroupPath?: string;
  programs?: { name: string; attached: boolean }[];
  lastError?: { op: string; errno?: number; message: string };
}

/** Status of the eBPF redirector for status.json (`ebpfProgramStatus`). */
export function redirectorModuleStatus(s: RedirectorStatusLike | undefined): ModuleStatus {
  if (!s) return { status: 'UNKNOWN', message: 'the redirector has not started yet' };
  const attached = (s.programs ?? []).filter((p) => p.attached).map((p) => p.name);
  const where = s.cgroupPath ? ` on cgroup ${s.cgroupPath}` : '';
  const err = s.lastError ? ` (${s.lastError.op}: ${s.lastError.message})` : '';
  switch (s.state) {
    case 'running':
      return {
        status: 'RUNNING',
        message: `eBPF programs attached${where}: ${attached.join(', ') || 'none'} (${s.mode ?? 'links'})`,
      };
    case 'degraded':
      return {
        status: 'RUNNING',
        message: `eBPF partly attached${where}: ${attached.join(', ') || 'none'}${err}; run 'gpa doctor' to see which hook is missing`,
      };
    case 'unsupported':
      return {
        status: 'STOPPED',
        message: `eBPF redirect is not supported on this kernel${err}; metadata requests are NOT intercepted. Needs cgroup v2 and BPF cgroup/connect4 and sockops (kernel 5.x+); run 'gpa doctor'`,
      };
    case 'failed':
      return {
        status: 'STOPPED',
        message: `eBPF programs failed to load or attach${where}${err}; check the agent runs as root with CAP_BPF/CAP_NET_ADMIN and that bpffs is mounted at /sys/fs/bpf, then restart the agent`,
      };
    default:
      return { status: 'STOPPED', message: `eBPF programs are not attached (state ${s.state})${err}` };
  }
}

/** Status of the proxy listener for status.json (`proxyListenerStatus`). */
export function listenerModuleStatus(l: {
  bound: boolean;
  address: string;
  port: number;
  workers?: number;
  error?: string;
}): ModuleStatus {
  if (l.bound) {
    return {
      status: 'RUNNING',
      message: `listening on ${l.address}:${l.port}${l.workers ? ` with ${l.workers} workers` : ''}`,
    };
  }
  if (l.error && /EADDRINUSE/.test(l.error)) {
    return {
      status: 'STOPPED',
      message: `cannot listen on ${l.address}:${l.port}: the port is in use; find the owner with 'ss -ltnp sport = :${l.port}' or set "listener": { "port": N } in the config`,
    };
  }
  return {
    status: 'STOPPED',
    message: `proxy listener not bound on ${l.address}:${l.port}${l.error ? `: ${l.error}` : ''}`,
  };
}

/** The policy problems that change what is enforced (an endpoint failing closed, or keeping its last good rules). */
export function policyEnforcementNote(problems: readonly { code: string; message: string }[]): string {
  return problems
    .filter((p) => p.code === 'fail_closed' || p.code === 'kept_previous')
    .map((p) => p.message)
    .join('; ');
}

/**
 * The key keeper part for status.json: the keeper's own message, with the next step when degraded,
 * and what the last policy compile changed in enforcement (an endpoint failing closed, or keeping
 * its last good rules), when anything.
 */
export function keyLatchMessage(k: {
  health: string;
  statusMessage: string;
  secureChannelState: string;
  policy?: string;
  /** The WireServer address the agent polls (168.63.129.16 unless configured otherwise). */
  wireServer?: string;
}): string {
  const base =
    k.health === 'degraded'
      ? `${k.statusMessage || 'the WireServer secure channel is failing'}. Check that ${k.wireServer ?? '168.63.129.16'} is reachable from the agent; the agent's journal has each failed poll`
      : k.statusMessage || `secure channel ${k.secureChannelState}`;
  return k.policy ? `${base}; policy: ${k.policy}` : base;
}
