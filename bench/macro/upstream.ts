// The metadata upstream seen by every target: the host emulator in its own process. Two instances
// run side by side: the floor (IMDS mode disabled: accepts unsigned requests, serves direct and
// nginx) and the agent's host (IMDS and WireServer in Enforce with a 50-privilege policy: it
// verifies the signature of every request the agent forwards, as the real host does).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Started, spawnReady, stopChild } from './child.js';

export interface HostPort {
  host: string;
  port: number;
}

export interface UpstreamConfig {
  role: 'floor' | 'agent-host';
  imds: HostPort;
  wireserver?: HostPort;
  hostga?: HostPort;
  /** authorizationRules.imds item sent to the agent (agent-host only). */
  imdsRules?: unknown;
  /** Use the stand-in server instead of lib/emulator (harness development only). */
  builtin?: boolean;
}

export interface UpstreamReady {
  imds: HostPort;
  wireserver?: HostPort;
  hostga?: HostPort;
  controlUrl?: string;
  builtin?: boolean;
  /** Signature verification counters the emulator reports, if any. */
  verifies?: boolean;
}

export interface Upstream {
  pid: number;
  ready: UpstreamReady;
  stop(): Promise<void>;
}

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'upstream-main.js');

export async function startUpstream(cfg: UpstreamConfig): Promise<Upstream> {
  const s: Started<UpstreamReady> = await spawnReady<UpstreamReady>(process.execPath, [MAIN, JSON.stringify(cfg)], {
    name: `emulator (${cfg.role})`,
    timeoutMs: 20000,
  });
  return { pid: s.child.pid!, ready: s.ready, stop: () => stopChild(s.child) };
}
