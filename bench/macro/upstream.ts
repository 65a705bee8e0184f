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

/**
 * V8 flags of both hosts. `--no-memory-reducer`: no full garbage collections while a host idles.
 * Such a collection, with no request in flight, frees the hidden classes of the short-lived objects
 * of Node's HTTP server (the `process.nextTick` records, `ServerResponse`), and the next objects get
 * new ones. The inline caches that had seen the old ones go megamorphic for good. From then on,
 * every request adds those properties through the V8 runtime, and the host needs several µs more of
 * the shared CPU per request. The agent's host idles just after the agent's start-up requests, so it
 * was on those slow paths in every run; the floor only at times.
 */
export const UPSTREAM_NODE_FLAGS: readonly string[] = ['--no-memory-reducer'];

export async function startUpstream(cfg: UpstreamConfig): Promise<Upstream> {
  const args = [...UPSTREAM_NODE_FLAGS, MAIN, JSON.stringify(cfg)];
  const s: Started<UpstreamReady> = await spawnReady<UpstreamReady>(process.execPath, args, {
    name: `emulator (${cfg.role})`,
    timeoutMs: 20000,
  });
  return { pid: s.child.pid!, ready: s.ready, stop: () => stopChild(s.child) };
}
