import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Endpoint } from '../keykeeper/index.js';
import type { NativeHmac } from '../signing/index.js';
import { createControlServer } from './control-server.js';
import { createEndpointServer } from './endpoint-server.js';
import type { Fault, FaultSpec } from './faults.js';
import { HostCore, type HostStateView } from './host-core.js';
import type { HostSettingsPatch } from './host-state.js';
import { hostgaRoute } from './hostga-routes.js';
import { imdsRoute } from './imds-routes.js';
import type { JournalEntry } from './journal.js';
import { applyVmModel, type VmModelResult } from './vm-model.js';
import { wireserverRoute } from './wireserver-routes.js';

export interface HostPort {
  host: string;
  port: number;
}

export interface EmulatorOptions {
  /** Defaults: IMDS 127.254.169.254:0, WireServer and HostGAPlugin 127.63.129.16:0 (ephemeral ports). */
  imds?: HostPort;
  wireserver?: HostPort;
  hostga?: HostPort;
  /** Loopback only. Default 127.0.0.1:0; null for no control listener (in-process API only). */
  control?: HostPort | { socketPath: string } | null;
  settings?: HostSettingsPatch;
  /** Folder of linked inVMAccessControlProfiles (`<gallery>/<profile>/<version>.json`). */
  profilesDir?: string;
  /** A VM model (resource JSON or proxyAgentSettings) applied at start. */
  vmModel?: unknown;
  journalLimit?: number;
  /**
   * Verify signatures with the addon's HMAC-SHA256 (lib/redirector nativeHmac()) instead of
   * node:crypto: the bench's host, which shares the cores it measures. Tests leave it unset, so the
   * emulator checks the agent's signatures with an implementation of its own.
   */
  hmac?: NativeHmac | null;
  log?: (msg: string) => void;
}

/** A running metadata host emulator; the control API mirrors these methods. */
export interface Emulator {
  readonly addresses: Record<Endpoint, HostPort> & { control: HostPort | { socketPath: string } | null };
  /** `http://host:port` of the control API, or `unix:<path>`, or null. */
  readonly controlUrl: string | null;
  journal(since?: number): JournalEntry[];
  clearJournal(): void;
  configure(patch: HostSettingsPatch): HostStateView;
  applyVmModel(doc: unknown): VmModelResult;
  resetKey(): { guid: string; incarnationId: number };
  setFault(fault: FaultSpec): number;
  clearFaults(id?: number): void;
  faults(): Fault[];
  state(): HostStateView;
  notes(): string[];
  close(): Promise<void>;
}

/** True for addresses a control listener may use: loopback only, never a metadata address. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function listen(server: Server, where: HostPort | { socketPath: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if ('socketPath' in where) server.listen(where.socketPath, done);
    else server.listen({ host: where.host, port: where.port }, done);
  });
}

function bound(server: Server): HostPort {
  const a = server.address() as AddressInfo;
  return { host: a.address, port: a.port };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Starts the IMDS, WireServer, HostGAPlugin and control listeners and reports the bound ports. */
export async function startEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const log = opts.log ?? (() => {});
  const core = new HostCore(opts.journalLimit ?? 100_000, log, opts.hmac ?? null);
  if (opts.settings) core.configure(opts.settings);
  const profilesDir = opts.profilesDir;
  if (opts.vmModel !== undefined) applyVmModel(core, opts.vmModel, profilesDir);
  const control = opts.control === undefined ? { host: '127.0.0.1', port: 0 } : opts.control;
  if (control && 'host' in control && !isLoopbackHost(control.host)) {
    throw new Error(`control address ${control.host} is not loopback; the control API must never be reachable off-box`);
  }
  const timers = new Set<NodeJS.Timeout>();
  const servers: Server[] = [];
  const start = async (server: Server, where: HostPort | { socketPath: string }) => {
    servers.push(server);
    await listen(server, where);
    return server;
  };
  try {
    const imds = await start(
      createEndpointServer(core, 'imds', imdsRoute, timers),
      opts.imds ?? { host: '127.254.169.254', port: 0 },
    );
    const ws = await start(
      createEndpointServer(core, 'wireserver', wireserverRoute, timers),
      opts.wireserver ?? { host: '127.63.129.16', port: 0 },
    );
    const hostga = await start(
      createEndpointServer(core, 'hostga', hostgaRoute, timers),
      opts.hostga ?? { host: '127.63.129.16', port: 0 },
    );
    const emu: Emulator = {
      addresses: { imds: bound(imds), wireserver: bound(ws), hostga: bound(hostga), control: null },
      controlUrl: null,
      journal: (since) => core.journal.read(since),
      clearJournal: () => core.journal.clear(),
      configure: (patch) => core.configure(patch),
      applyVmModel: (doc) => applyVmModel(core, doc, profilesDir),
      resetKey: () => core.resetKey(),
      setFault: (f) => core.faults.add(f),
      clearFaults: (id) => core.faults.clear(id),
      faults: () => core.faults.list(),
      state: () => core.view(),
      notes: () => [...core.notes],
      close: async () => {
        for (const t of timers) clearTimeout(t);
        await Promise.all(servers.map(closeServer));
      },
    };
    if (control) {
      const cs = await start(createControlServer(emu), control);
      const addr = 'socketPath' in control ? control : bound(cs);
      const url =
        'socketPath' in addr
          ? `unix:${addr.socketPath}`
          : `http://${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${addr.port}`;
      Object.assign(emu, { controlUrl: url, addresses: { ...emu.addresses, control: addr } });
    }
    return emu;
  } catch (err) {
    await Promise.all(servers.filter((s) => s.listening).map(closeServer));
    throw err;
  }
}
