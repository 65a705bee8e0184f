/**
 * End-to-end stack: the metadata host emulator on loopback aliases (or, in a sealed network
 * namespace, on the real metadata addresses), the agent as a child process (`gpa run --config`)
 * with real eBPF attached to a child cgroup, and callers run inside that cgroup as any uid.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Emulator, type HostSettingsPatch, type JournalEntry, startEmulator } from '../../lib/emulator/index.js';
import { createTestCgroup, type RunAs, type RunResult, type TestCgroup } from '../helpers/cgroup.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..', '..');
const CLI = path.join(repoRoot, 'bin', 'gpa.mjs');
export const PYTHON = '/usr/bin/python3';
export const NOBODY = 65534;

export interface Stack {
  emulator: Emulator;
  cgroup: TestCgroup;
  agent: ChildProcess;
  agentPort: number;
  metricsPort: number | null;
  logFolder: string;
  configFile: string;
  stderr: () => string;
  /** `http://<imds address>:<port>` as a client inside the cgroup would use it. */
  imds: string;
  wireserver: string;
  hostga: string;
  run(cmd: string, args: string[], opts?: RunAs & { timeoutMs?: number; input?: string }): Promise<RunResult>;
  curl(
    url: string,
    opts?: RunAs & { headers?: string[]; extra?: string[] },
  ): Promise<{ status: number; body: string; headers: string; stderr: string }>;
  /** Waits until the agent log shows `re` (e.g. a redirect rule installed). */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<void>;
  /** Applies host settings and waits until the agent installed/removed rules and published the snapshot. */
  configureHost(patch: HostSettingsPatch): Promise<void>;
  stop(): Promise<{ code: number | null }>;
  cleanup(): Promise<void>;
}

export interface StackOptions {
  settings?: HostSettingsPatch;
  /** Bind the emulator on the real metadata addresses (only inside a sealed netns). */
  realAddresses?: boolean;
  workers?: number;
  /** Runs after the emulator started and before the agent does (e.g. a fault withholding the key). */
  beforeAgent?: (emulator: Emulator) => void;
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'gpa-e2e-'));
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(tmp, { recursive: true, force: true })];
  const emulator = await startEmulator(
    opts.realAddresses
      ? {
          imds: { host: '169.254.169.254', port: 80 },
          wireserver: { host: '168.63.129.16', port: 80 },
          hostga: { host: '168.63.129.16', port: 32526 },
          control: null,
          settings: opts.settings ?? {},
        }
      : { control: null, settings: opts.settings ?? {} },
  );
  cleanups.unshift(() => emulator.close());
  opts.beforeAgent?.(emulator);
  const cgroup = createTestCgroup('e2e');
  cleanups.unshift(() => cgroup.cleanup());
  const a = emulator.addresses;
  const config = {
    logFolder: path.join(tmp, 'log'),
    latchKeyFolder: path.join(tmp, 'keys'),
    pollKeyStatusIntervalInSeconds: 1,
    cgroupPath: cgroup.path,
    pinDir: null,
    endpoints: {
      imds: { address: a.imds.host, port: a.imds.port },
      wireserver: { address: a.wireserver.host, port: a.wireserver.port },
      hostga: { address: a.hostga.host, port: a.hostga.port },
    },
    listener: { address: '127.0.0.1', port: 0 },
    workers: opts.workers ?? 2,
    metrics: { address: '127.0.0.1', port: 0 },
    timeouts: { headerMs: 3000, responseMs: 5000, connectMs: 2000, keepAliveMs: 10000 },
    drainSeconds: 2,
  };
  const configFile = path.join(tmp, 'config.json');
  writeFileSync(configFile, JSON.stringify(config));
  const agent = spawn(process.execPath, [CLI, 'run', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.unshift(() => {
    if (agent.exitCode === null) agent.kill('SIGKILL');
  });
  let err = '';
  let out = '';
  agent.stderr!.on('data', (d) => {
    err += d;
  });
  const runCleanups = async () => {
    for (const c of cleanups) {
      try {
        await c();
      } catch {
        // keep cleaning
      }
    }
  };
  const ready = await new Promise<{ port: number; metricsPort: number | null }>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`agent did not start:\n${err}`)), 20_000);
    agent.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes('"ready"'));
      if (line) {
        clearTimeout(t);
        resolve(JSON.parse(line));
      }
    });
    agent.once('exit', (code) => reject(new Error(`agent exited (${code}) during start:\n${err}`)));
  }).catch(async (e: unknown) => {
    await runCleanups();
    throw e;
  });
  const url = (h: { host: string; port: number }) => `http://${h.host}${h.port === 80 ? '' : `:${h.port}`}`;

  const stack: Stack = {
    emulator,
    cgroup,
    agent,
    agentPort: ready.port,
    metricsPort: ready.metricsPort,
    logFolder: config.logFolder,
    configFile,
    stderr: () => err,
    imds: url(a.imds),
    wireserver: url(a.wireserver),
    hostga: url(a.hostga),
    run: (cmd, args, o) => cgroup.run(cmd, args, o),
    async curl(u, o = {}) {
      const args = ['-sS', '-m', '10', '-i', '-w', '\n%{http_code}'];
      for (const h of o.headers ?? ['Metadata: true']) args.push('-H', h);
      const r = await cgroup.run('curl', [...args, ...(o.extra ?? []), u], o);
      const nl = r.stdout.lastIndexOf('\n');
      let text = r.stdout.slice(0, nl);
      while (text.startsWith('HTTP/1.1 100')) text = text.slice(text.indexOf('\r\n\r\n') + 4);
      const end = text.indexOf('\r\n\r\n');
      return {
        status: Number(r.stdout.slice(nl + 1)),
        headers: end === -1 ? text : text.slice(0, end),
        body: end === -1 ? '' : text.slice(end + 4),
        stderr: r.stderr,
      };
    },
    async waitForLog(re, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (!re.test(err)) {
        if (Date.now() > deadline) throw new Error(`agent log never matched ${re}:\n${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async configureHost(patch) {
      const mark = err.length;
      emulator.configure(patch);
      // The agent polls every second; wait for two polls past the change so its snapshot is applied.
      const seq = emulator.journal().at(-1)?.seq ?? 0;
      const deadline = Date.now() + 15_000;
      while (
        emulator.journal(seq).filter((e) => e.rawTarget === '/secure-channel/status' && e.status !== null).length < 2
      ) {
        if (Date.now() > deadline) throw new Error(`agent did not poll after configure:\n${err.slice(mark)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 200));
    },
    async stop() {
      if (agent.exitCode !== null) return { code: agent.exitCode };
      const exited = new Promise<number | null>((r) => agent.once('exit', (c) => r(c)));
      agent.kill('SIGTERM');
      return { code: await exited };
    },
    cleanup: runCleanups,
  };
  return stack;
}

/** Requests for `endpoint` that reached the host without a valid signature (excluding exempt uploads). */
export function unsignedAt(journal: JournalEntry[], endpoint: 'imds' | 'wireserver' | 'hostga'): JournalEntry[] {
  return journal.filter(
    (e) =>
      e.endpoint === endpoint &&
      e.signature !== 'valid' &&
      e.signature !== 'exempt' &&
      !e.rawTarget.startsWith('/secure-channel'),
  );
}

export function header(entry: JournalEntry, name: string): string | undefined {
  return entry.headers.find(([n]) => n.toLowerCase() === name)?.[1];
}
