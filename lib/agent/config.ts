import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { GpaError } from '../errors.js';

export type EndpointName = 'imds' | 'wireserver' | 'hostga';

export interface EndpointConfig {
  /** The metadata address clients connect to (what the redirect rule matches). */
  address: string;
  port: number;
  /** Where the agent forwards (defaults to address:port; the agent's own connects are exempt). */
  upstream: { host: string; port: number };
}

/** The agent's configuration after validation; every key has a default (spec section 7). */
export interface AgentConfig {
  logFolder: string;
  latchKeyFolder: string;
  /** Folder of WireServer_Rules.json / IMDS_Rules.json (default: `rules` beside the key folder). */
  rulesFolder: string;
  pollKeyStatusIntervalInSeconds: number;
  fileLogLevel: 'error' | 'warn' | 'info' | 'debug';
  /** cgroup v2 directory the programs attach to; null = the cgroup v2 root. */
  cgroupPath: string | null;
  /** bpffs folder for pinned links and maps (a crash fails closed); null = links only. */
  pinDir: string | null;
  /** false runs the proxy without eBPF (every connection is then unattributed → 421): tests only. */
  redirect: boolean;
  endpoints: Record<EndpointName, EndpointConfig>;
  listener: { address: string; port: number };
  workers: number;
  /**
   * How the workers handle client sockets: `native` through the addon (Linux; no net.Socket per
   * connection, measured about 40% less CPU per new connection), `node` with net.Server. `native` falls
   * back to `node` where the addon cannot (Windows, an older build).
   */
  clientSockets: 'native' | 'node';
  /** null disables the metrics server. */
  metrics: { address: string; port: number } | null;
  audit: { maxBytes: number; maxFiles: number };
  timeouts: { headerMs: number; keepAliveMs: number; responseMs: number; connectMs: number };
  /**
   * Client connections the agent holds at once: `total` (non-root callers together at most three
   * quarters of it) and `perUser` (any one non-root uid; unattributed connections share one such
   * share). null: derived from the open-files limit at start (lib/proxy/connection-limits.ts).
   */
  connections: { total: number | null; perUser: number | null };
  drainSeconds: number;
  /** Provisioning gives up (reports finished with an error) this long after start if not ready. */
  provisionTimeoutSeconds: number;
}

export const DEFAULT_CONFIG_FILE = '/etc/azure/proxy-agent.json';

function defaults(): AgentConfig {
  return {
    logFolder: '/var/lib/azure-proxy-agent',
    latchKeyFolder: '/var/lib/azure-proxy-agent/keys',
    rulesFolder: '/var/lib/azure-proxy-agent/rules',
    pollKeyStatusIntervalInSeconds: 15,
    fileLogLevel: 'info',
    cgroupPath: null,
    pinDir: '/sys/fs/bpf/guest-proxy-agent',
    redirect: true,
    endpoints: {
      imds: { address: '169.254.169.254', port: 80, upstream: { host: '169.254.169.254', port: 80 } },
      wireserver: { address: '168.63.129.16', port: 80, upstream: { host: '168.63.129.16', port: 80 } },
      hostga: { address: '168.63.129.16', port: 32526, upstream: { host: '168.63.129.16', port: 32526 } },
    },
    listener: { address: '127.0.0.1', port: 3080 },
    // One worker measured as fast as or faster than two on 2 cores (the load generator and host
    // share them) and uses ~20 MiB less; raise it on larger machines.
    workers: 1,
    clientSockets: 'native',
    metrics: { address: '127.0.0.1', port: 9464 },
    audit: { maxBytes: 20 * 1024 * 1024, maxFiles: 5 },
    timeouts: { headerMs: 10_000, keepAliveMs: 60_000, responseMs: 30_000, connectMs: 5_000 },
    connections: { total: null, perUser: null },
    drainSeconds: 5,
    provisionTimeoutSeconds: 120,
  };
}

const KNOWN = new Set([
  'logFolder',
  'latchKeyFolder',
  'rulesFolder',
  'pollKeyStatusIntervalInSeconds',
  'fileLogLevel',
  'cgroupPath',
  'pinDir',
  'redirect',
  'endpoints',
  'listener',
  'workers',
  'clientSockets',
  'metrics',
  'audit',
  'timeouts',
  'connections',
  'drainSeconds',
  'provisionTimeoutSeconds',
]);

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/**
 * Absolute on the platform the agent runs on: `/…` on Linux; on Windows also `C:\…` and
 * `\\server\share\…` (what an administrator writes in a Windows config), but not the
 * drive-relative `C:folder`.
 */
export function isAbsolutePath(p: string, platform: NodeJS.Platform = process.platform): boolean {
  return platform === 'win32' ? path.win32.isAbsolute(p) : p.startsWith('/');
}

/** `name` beside `folder` (the default rules folder sits beside the key folder). */
function besideFolder(folder: string, name: string, platform: NodeJS.Platform): string {
  const p = platform === 'win32' ? path.win32 : path.posix;
  return p.join(p.dirname(folder), name);
}

class Reader {
  readonly errors: string[] = [];
  readonly warnings: string[] = [];
  constructor(private readonly platform: NodeJS.Platform) {}
  str(v: unknown, at: string, fallback: string): string {
    if (v === undefined) return fallback;
    if (typeof v === 'string' && v.length > 0) return v;
    this.errors.push(`${at} must be a non-empty string (got ${JSON.stringify(v)})`);
    return fallback;
  }
  abs(v: unknown, at: string, fallback: string): string {
    const s = this.str(v, at, fallback);
    if (!isAbsolutePath(s, this.platform)) {
      const example =
        this.platform === 'win32' ? 'C:\\ProgramData\\guest-proxy-agent\\log' : '/var/lib/azure-proxy-agent';
      this.errors.push(`${at} must be an absolute path such as ${example} (got ${JSON.stringify(s)})`);
    }
    return s;
  }
  int(v: unknown, at: string, fallback: number, min: number, max: number): number {
    if (v === undefined) return fallback;
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
    this.errors.push(`${at} must be an integer from ${min} to ${max} (got ${JSON.stringify(v)})`);
    return fallback;
  }
  ip(v: unknown, at: string, fallback: string): string {
    const s = this.str(v, at, fallback);
    if (!IPV4.test(s) && isIP(s) !== 6)
      this.errors.push(`${at} must be an IPv4 or IPv6 literal (got ${JSON.stringify(s)})`);
    return s;
  }
  /** The object at `at`; with `known`, keys outside it are reported (the agent still starts). */
  obj(v: unknown, at: string, known?: readonly string[]): Record<string, unknown> {
    if (v === undefined || v === null) return {};
    if (typeof v === 'object' && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      if (known !== undefined) {
        for (const k of Object.keys(o))
          if (!known.includes(k))
            this.warnings.push(`unknown config key '${at}.${k}' is ignored (${known.join(', ')})`);
      }
      return o;
    }
    this.errors.push(`${at} must be an object`);
    return {};
  }
}

/**
 * Validates a parsed config object. Unknown keys are reported as warnings (the agent still starts);
 * a bad value is an error naming the key, what it must be, and what it was.
 */
export function validateConfig(
  raw: unknown,
  platform: NodeJS.Platform = process.platform,
): { config: AgentConfig; errors: string[]; warnings: string[] } {
  const d = defaults();
  const r = new Reader(platform);
  const warnings = r.warnings;
  const o = r.obj(raw, 'config');
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) warnings.push(`unknown config key '${k}' is ignored`);
  const latchKeyFolder = r.abs(o.latchKeyFolder, 'latchKeyFolder', d.latchKeyFolder);
  const endpoints = { ...d.endpoints };
  const eo = r.obj(o.endpoints, 'endpoints');
  for (const k of Object.keys(eo)) {
    if (!(k in endpoints)) warnings.push(`unknown endpoint 'endpoints.${k}' is ignored (imds, wireserver, hostga)`);
  }
  for (const name of ['imds', 'wireserver', 'hostga'] as const) {
    const e = r.obj(eo[name], `endpoints.${name}`, ['address', 'port', 'upstream']);
    const address = r.ip(e.address, `endpoints.${name}.address`, d.endpoints[name].address);
    const port = r.int(e.port, `endpoints.${name}.port`, d.endpoints[name].port, 1, 65535);
    const u = r.obj(e.upstream, `endpoints.${name}.upstream`, ['host', 'port']);
    endpoints[name] = {
      address,
      port,
      upstream: {
        host: r.ip(u.host, `endpoints.${name}.upstream.host`, address),
        port: r.int(u.port, `endpoints.${name}.upstream.port`, port, 1, 65535),
      },
    };
  }
  const lo = r.obj(o.listener, 'listener', ['address', 'port']);
  const listener = {
    address: r.ip(lo.address, 'listener.address', d.listener.address),
    port: r.int(lo.port, 'listener.port', d.listener.port, 0, 65535),
  };
  let metrics = d.metrics;
  if (o.metrics === null) metrics = null;
  else if (o.metrics !== undefined) {
    const mo = r.obj(o.metrics, 'metrics', ['address', 'port']);
    metrics = {
      address: r.ip(mo.address, 'metrics.address', '127.0.0.1'),
      port: r.int(mo.port, 'metrics.port', 9464, 0, 65535),
    };
  }
  const ao = r.obj(o.audit, 'audit', ['maxBytes', 'maxFiles']);
  const to = r.obj(o.timeouts, 'timeouts', ['headerMs', 'keepAliveMs', 'responseMs', 'connectMs']);
  const co = r.obj(o.connections, 'connections', ['total', 'perUser']);
  const optionalInt = (v: unknown, at: string, min: number, max: number): number | null =>
    v === undefined || v === null ? null : r.int(v, at, min, min, max);
  const clientSockets = o.clientSockets ?? d.clientSockets;
  if (clientSockets !== 'native' && clientSockets !== 'node') {
    r.errors.push(`clientSockets must be "native" or "node" (got ${JSON.stringify(clientSockets)})`);
  }
  const level = o.fileLogLevel ?? d.fileLogLevel;
  if (!['error', 'warn', 'info', 'debug'].includes(String(level).toLowerCase())) {
    r.errors.push(`fileLogLevel must be one of error, warn, info, debug (got ${JSON.stringify(level)})`);
  }
  if (o.redirect !== undefined && typeof o.redirect !== 'boolean') r.errors.push('redirect must be true or false');
  const config: AgentConfig = {
    logFolder: r.abs(o.logFolder, 'logFolder', d.logFolder),
    latchKeyFolder,
    rulesFolder: r.abs(o.rulesFolder, 'rulesFolder', besideFolder(latchKeyFolder, 'rules', platform)),
    pollKeyStatusIntervalInSeconds: r.int(
      o.pollKeyStatusIntervalInSeconds,
      'pollKeyStatusIntervalInSeconds',
      15,
      1,
      3600,
    ),
    fileLogLevel: String(level).toLowerCase() as AgentConfig['fileLogLevel'],
    cgroupPath: o.cgroupPath === null || o.cgroupPath === undefined ? null : r.abs(o.cgroupPath, 'cgroupPath', ''),
    pinDir: o.pinDir === null ? null : r.abs(o.pinDir, 'pinDir', d.pinDir!),
    redirect: o.redirect !== false,
    endpoints,
    listener,
    workers: r.int(o.workers, 'workers', d.workers, 1, 64),
    clientSockets: clientSockets === 'node' ? 'node' : 'native',
    metrics,
    audit: {
      maxBytes: r.int(ao.maxBytes, 'audit.maxBytes', d.audit.maxBytes, 4096, 2 ** 40),
      maxFiles: r.int(ao.maxFiles, 'audit.maxFiles', d.audit.maxFiles, 1, 100),
    },
    timeouts: {
      headerMs: r.int(to.headerMs, 'timeouts.headerMs', d.timeouts.headerMs, 100, 600_000),
      keepAliveMs: r.int(to.keepAliveMs, 'timeouts.keepAliveMs', d.timeouts.keepAliveMs, 100, 3_600_000),
      responseMs: r.int(to.responseMs, 'timeouts.responseMs', d.timeouts.responseMs, 100, 600_000),
      connectMs: r.int(to.connectMs, 'timeouts.connectMs', d.timeouts.connectMs, 100, 600_000),
    },
    connections: {
      total: optionalInt(co.total, 'connections.total', 16, 1_000_000),
      perUser: optionalInt(co.perUser, 'connections.perUser', 1, 1_000_000),
    },
    drainSeconds: r.int(o.drainSeconds, 'drainSeconds', d.drainSeconds, 0, 300),
    provisionTimeoutSeconds: r.int(
      o.provisionTimeoutSeconds,
      'provisionTimeoutSeconds',
      d.provisionTimeoutSeconds,
      1,
      86_400,
    ),
  };
  if (!['127.0.0.1', '::1'].includes(listener.address) && !listener.address.startsWith('127.')) {
    r.errors.push(
      `listener.address must be a loopback address (got ${listener.address}); the agent must never listen beyond the VM`,
    );
  }
  if (metrics !== null && !metrics.address.startsWith('127.') && metrics.address !== '::1') {
    r.errors.push(`metrics.address must be a loopback address (got ${metrics.address})`);
  }
  return { config, errors: r.errors, warnings };
}

/** Reads and validates a config file; a missing default file means all defaults. Throws GpaError on bad input. */
export function loadConfig(
  file: string,
  opts: { allowMissing?: boolean } = {},
): { config: AgentConfig; warnings: string[] } {
  let raw: unknown = {};
  try {
    raw = JSON.parse(readFileSync(file, 'utf8').replace(/^\uFEFF/, ''));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (!(e.code === 'ENOENT' && opts.allowMissing)) {
      throw new GpaError(
        'GPA_ERR_CONFIG',
        e.code === 'ENOENT'
          ? `config file ${file} not found; pass --config FILE or create it`
          : `cannot read config ${file}: ${e.message}`,
      );
    }
  }
  const { config, errors, warnings } = validateConfig(raw);
  if (errors.length > 0) {
    throw new GpaError('GPA_ERR_CONFIG', `invalid config ${file}:\n  ${errors.join('\n  ')}`);
  }
  return { config, warnings };
}
