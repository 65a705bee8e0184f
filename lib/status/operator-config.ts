import { readFileSync } from 'node:fs';

/** Where the agent's config lives unless `--config` says otherwise. */
export const DEFAULT_CONFIG_PATH = '/etc/azure/proxy-agent.json';

/**
 * The few config values the operator commands need (where to find the listener, metrics, logs,
 * keys and pins). Read tolerantly: the agent's own loader validates the file strictly at start-up,
 * and an operator command must still work (with defaults) when the file is missing or broken.
 */
export interface OperatorConfig {
  source: string | null;
  problem?: string;
  listenerAddress: string;
  listenerPort: number;
  metricsAddress: string;
  metricsPort: number;
  logFolder: string;
  latchKeyFolder: string;
  /** null: the config turns pinning off ("pinDir": null). */
  pinDir: string | null;
  cgroupPath: string | null;
  raw: Record<string, unknown>;
}

export const OPERATOR_DEFAULTS = {
  listenerAddress: '127.0.0.1',
  listenerPort: 3080,
  metricsAddress: '127.0.0.1',
  metricsPort: 9464,
  logFolder: '/var/lib/azure-proxy-agent',
  latchKeyFolder: '/var/lib/azure-proxy-agent/keys',
  pinDir: '/sys/fs/bpf/guest-proxy-agent',
  cgroupPath: null,
} satisfies Omit<OperatorConfig, 'source' | 'raw'>;

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}
function port(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 && v < 65536 ? v : undefined;
}
function obj(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** Reads the operator view of the config at `file` (missing file → defaults, with `source: null`). */
export function readOperatorConfig(file: string = DEFAULT_CONFIG_PATH): OperatorConfig {
  let raw: Record<string, unknown> = {};
  let source: string | null = null;
  let problem: string | undefined;
  try {
    raw = obj(JSON.parse(readFileSync(file, 'utf8').replace(/^\uFEFF/, '')));
    source = file;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code !== 'ENOENT') problem = `cannot read ${file}: ${e.message}`;
  }
  const listener = obj(raw.listener);
  const metrics = obj(raw.metrics);
  const d = OPERATOR_DEFAULTS;
  const logFolder = str(raw.logFolder) ?? d.logFolder;
  return {
    source,
    ...(problem ? { problem } : {}),
    // The agent's own keys only (lib/agent/config.ts): a name the agent ignores must not send the
    // operator commands somewhere the agent is not.
    listenerAddress: str(listener.address) ?? d.listenerAddress,
    listenerPort: port(listener.port) ?? d.listenerPort,
    metricsAddress: str(metrics.address) ?? d.metricsAddress,
    metricsPort: port(metrics.port) ?? d.metricsPort,
    logFolder,
    latchKeyFolder: str(raw.latchKeyFolder) ?? d.latchKeyFolder,
    pinDir: raw.pinDir === null ? null : (str(raw.pinDir) ?? d.pinDir),
    cgroupPath: str(raw.cgroupPath) ?? null,
    raw,
  };
}
