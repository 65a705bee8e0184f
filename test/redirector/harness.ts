/** Shared pieces of the redirector suite: a lookup server, the Python client, rule helpers. */
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ConnOrigin, lookupConnection, lookupSocket, socketLookupSupported } from '../../lib/redirector/index.js';
import type { RunAs, TestCgroup } from '../helpers/cgroup.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Source tree root (tests run from dist/test/redirector). */
export const repoRoot = path.resolve(here, '..', '..', '..');
export const clientPy = path.join(repoRoot, 'test', 'redirector', 'fixtures', 'client.py');
/** The system interpreter: a per-user shim (pyenv under /root) is not executable by uid 1001. */
export const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export interface Accepted {
  remotePort: number;
  origin: ConnOrigin | null;
  /** The same record looked up (without consuming) by the accepted socket's fd, before `origin`. */
  byFd: ConnOrigin | null | 'unsupported';
}

export interface LookupServer {
  host: string;
  port: number;
  accepted: Accepted[];
  /** Resolves once `n` connections have been accepted. */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A plain TCP listener standing in for the agent: on accept it looks the connection up (consuming
 * it unless `lookup` is 'peek' or 'none') and answers one line.
 */
export async function startLookupServer(
  host = '127.0.0.1',
  lookup: 'consume' | 'peek' | 'none' = 'consume',
): Promise<LookupServer> {
  const accepted: Accepted[] = [];
  const sockets = new Set<net.Socket>();
  let waiter: { n: number; resolve: () => void } | undefined;
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
    const byFd = lookup === 'none' || !socketLookupSupported() ? 'unsupported' : lookupSocket(fd, { consume: false });
    const origin =
      lookup === 'none'
        ? null
        : lookupConnection(
            { address: s.remoteAddress ?? '', port: s.remotePort ?? 0 },
            { address: s.localAddress ?? '', port: s.localPort ?? 0 },
            { consume: lookup === 'consume' },
          );
    accepted.push({ remotePort: s.remotePort ?? 0, origin, byFd });
    s.write(origin ? `ok ${origin.pid}\n` : 'ok none\n');
    if (waiter && accepted.length >= waiter.n) waiter.resolve();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0, backlog: 2048 }, resolve);
  });
  return {
    host,
    port: (server.address() as net.AddressInfo).port,
    accepted,
    waitFor(n, timeoutMs = 30_000) {
      if (accepted.length >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`only ${accepted.length}/${n} connections arrived`)), timeoutMs);
        waiter = {
          n,
          resolve: () => {
            clearTimeout(t);
            resolve();
          },
        };
      });
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

export interface ClientReport {
  pid: number;
  tid: number;
  uid: number;
  gid: number;
  ports: number[];
  replies: string[];
  error: string | null;
}

export interface ClientOptions extends RunAs {
  host: string;
  port: number;
  family?: 4 | 6;
  bind?: number;
  bindHost?: string;
  thread?: boolean;
  count?: number;
}

export function clientArgs(o: ClientOptions): string[] {
  const a = [clientPy, '--host', o.host, '--port', String(o.port), '--family', String(o.family ?? 4)];
  if (o.bind !== undefined) a.push('--bind', String(o.bind));
  if (o.bindHost) a.push('--bind-host', o.bindHost);
  if (o.thread) a.push('--thread');
  if (o.count) a.push('--count', String(o.count));
  return a;
}

/** Runs the Python client inside `cg` and returns its report (throws with its stderr on failure). */
export async function runClient(cg: TestCgroup, o: ClientOptions): Promise<ClientReport> {
  const r = await cg.run(python, clientArgs(o), o);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.code !== 0 || !line) throw new Error(`client failed (exit ${r.code}): ${r.stderr}`);
  const report = JSON.parse(line) as ClientReport;
  if (report.pid !== r.pid) throw new Error(`client pid ${report.pid} != spawned pid ${r.pid}`);
  return report;
}

/** A random port in 20000..59999 for rule destinations that nothing listens on. */
export function randomPort(): number {
  return 20000 + Math.floor(Math.random() * 40000);
}

export interface HeldClient {
  report: ClientReport;
  /** Closes the client's connections (RST) and waits for it to exit. */
  release(): Promise<void>;
}

/** Starts the client with --hold: its connections stay open until release(). */
export async function holdClient(cg: TestCgroup, o: ClientOptions): Promise<HeldClient> {
  const child = cg.spawn(python, [...clientArgs(o), '--hold']);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout?.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) resolve(buf.split('\n')[0]!);
    });
    child.once('exit', (code) => reject(new Error(`held client exited early (${code})`)));
  });
  return {
    report: JSON.parse(line) as ClientReport,
    async release() {
      child.stdin?.end('close\n');
      await exited;
    },
  };
}
