import type { AuditBatch } from '../audit/index.js';
import type { CompileInput } from '../policy/index.js';
import type { ConnectionLimits, EndpointRoute, ProxyTimeouts } from '../proxy/index.js';
import type { ProvisionSnapshot } from '../status/index.js';

/**
 * The messages between the agent's main thread and its data-plane workers, in one place. Every
 * field is structured-clone safe (no class instances, no functions); Buffers travel as Uint8Array.
 */

/** Given once at worker start (workerData). */
export interface WorkerInit {
  index: number;
  /** Listen with SO_REUSEPORT by host/port (Node ≥ 22.12) or on an fd the addon created (Node 20). */
  listen: { host: string; port: number; reusePort: boolean } | { fd: number };
  /** `native`: client sockets through the addon where it can (lib/proxy/native-io.ts). */
  clientSockets: 'native' | 'node';
  routes: EndpointRoute[];
  timeouts: ProxyTimeouts;
  /** false: no eBPF lookups (every connection is unattributed); tests only. */
  redirect: boolean;
  metrics: boolean;
  /** This worker's share of the agent's connection limits. */
  connections: ConnectionLimits;
}

/** Main → worker: everything a request needs from the control plane. */
export interface SnapshotMessage {
  type: 'gpa:snapshot';
  epoch: number;
  /** Compile input (raw rules, modes, rule ids, local rules folder, self-test problems): each worker compiles. */
  policy: Omit<CompileInput, 'previous'>;
  key: { guid: string; bytes: Uint8Array } | null;
  hostClockOffsetMs: number;
  provision: ProvisionSnapshot;
  aggregatedStatus: string;
}

/** Main → worker: small updates that do not need a policy compile. */
export interface StateMessage {
  type: 'gpa:state';
  hostClockOffsetMs?: number;
  provision?: ProvisionSnapshot;
  aggregatedStatus?: string;
}

/** Main → worker: stop accepting, drain, then exit. */
export interface DrainMessage {
  type: 'gpa:drain';
  drainMs: number;
}

/**
 * Main → worker: an audit batch's buffer, written to disk, handed back (transferred) for the
 * worker's next batch. Without it each written buffer waits for the main thread's garbage
 * collector, which runs rarely there: tens of MiB of written batches at a time under load.
 */
export interface AuditBufferMessage {
  type: 'gpa:audit-buffer';
  buffer: ArrayBuffer;
}

export type MainToWorker = SnapshotMessage | StateMessage | DrainMessage | AuditBufferMessage;

/** Worker → main. */
export type WorkerToMain =
  | { type: 'gpa:listening'; index: number; address: string; port: number }
  | { type: 'gpa:listen-failed'; index: number; message: string }
  | { type: 'gpa:snapshot-applied'; index: number; epoch: number; policyVersion: number }
  | { type: 'gpa:audit'; batch: AuditBatch }
  | { type: 'gpa:notify-keykeeper' }
  | { type: 'gpa:drained'; index: number };

export function isMessage<T extends { type: string }>(m: unknown, type: T['type']): m is T {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type;
}
