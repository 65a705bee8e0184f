// The agent under test: `gpa run` in its own process, redirect attached to a child cgroup the
// clients run in, its own host emulator in Enforce (signatures verified), a 50-privilege policy,
// audit log and metrics on. Clients connect to the IMDS loopback alias and eBPF sends them to it.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBenchCgroup } from './cgroup.js';
import { freePort, stopChild } from './child.js';
import { benchPolicy } from './policy50.js';
import { rssBytes } from './proc.js';
import { type ProfileSummary, summarizeTickLogs } from './profile.js';
import type { Target } from './target.js';
import { type HostPort, startUpstream, type UpstreamReady } from './upstream.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const GPA = path.join(ROOT, 'bin', 'gpa.mjs');
const RUN_COMMAND = path.join(ROOT, 'dist', 'lib', 'cli', 'commands', 'run.js');

export interface AgentTarget extends Target {
  cgroupPath: string;
  rssMiB(): number;
  rssMax(): number;
  describe(): Record<string, unknown>;
  /** Idle RSS after the load, then (with --profile) stops the agent and reads its CPU profiles. */
  finish(): Promise<{ rssMiBAfter: number; profile?: ProfileSummary }>;
}

export interface AgentOptions {
  builtinUpstream: boolean;
  profile: boolean;
  /** Node binary for the agent (default: the bench's own, process.execPath). */
  node?: string | null;
  /** The agent's `clientSockets` (default native). */
  clientSockets?: 'native' | 'node';
  log: (s: string) => void;
}

/** The agent's configuration file (`gpa run --config`, keys of lib/agent/config.ts). */
export function agentConfig(
  dir: string,
  cgroupPath: string,
  host: UpstreamReady,
  listen: HostPort,
  metrics: HostPort,
  clientSockets: 'native' | 'node' = 'native',
) {
  // Clients connect to the emulator's own addresses; the redirect sends them to the agent, which
  // forwards to the same address (its own connects are exempt).
  const ep = (a: HostPort | undefined) =>
    a && { address: a.host, port: a.port, upstream: { host: a.host, port: a.port } };
  return {
    logFolder: path.join(dir, 'log'),
    latchKeyFolder: path.join(dir, 'state', 'keys'),
    cgroupPath,
    // Links only: they die with the agent process, nothing is left pinned under /sys/fs/bpf.
    pinDir: null,
    redirect: true,
    endpoints: { imds: ep(host.imds), wireserver: ep(host.wireserver), hostga: ep(host.hostga) },
    listener: { address: listen.host, port: listen.port },
    clientSockets,
    metrics: { address: metrics.host, port: metrics.port },
  };
}

async function untilRedirected(url: string, procs: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    // curl inside the cgroup, as a client would be: redirected, attributed, authorized, signed.
    const r = spawnSync(
      '/bin/sh',
      ['-c', 'echo $$ > "$0" && exec curl -s -i --max-time 3 -H Metadata:true "$1"', procs, url],
      {
        encoding: 'utf8',
      },
    );
    last = `${r.stdout ?? ''}${r.stderr ?? ''}`.slice(0, 600);
    if (/^HTTP\/1\.1 200/.test(last) && /x-ms-azure-host-authorization: *value/i.test(last)) return last;
    await new Promise((res) => setTimeout(res, 500));
  }
  throw new Error(`the agent did not serve ${url} through the redirect within ${timeoutMs} ms; last answer:\n${last}`);
}

export async function startAgentTarget(work: string, o: AgentOptions): Promise<AgentTarget> {
  if (!existsSync(RUN_COMMAND))
    throw new Error('`gpa run` is not built (lib/agent has not landed): measuring direct and nginx only');
  const dir = path.join(work, 'agent');
  mkdirSync(path.join(dir, 'log'), { recursive: true });
  mkdirSync(path.join(dir, 'state'), { recursive: true, mode: 0o700 });
  const cgroup = createBenchCgroup();
  const cleanups: (() => Promise<void> | void)[] = [() => cgroup.remove()];
  const undo = async () => {
    while (cleanups.length) await cleanups.pop()!();
  };
  try {
    const policy = benchPolicy();
    const host = await startUpstream({
      role: 'agent-host',
      imds: { host: '127.254.169.254', port: 0 },
      imdsRules: policy.item,
      builtin: o.builtinUpstream,
    });
    cleanups.push(() => host.stop());
    const listen = { host: '127.0.0.1', port: await freePort() };
    const metrics = { host: '127.0.0.1', port: await freePort() };
    const configFile = path.join(dir, 'config.json');
    writeFileSync(
      configFile,
      JSON.stringify(agentConfig(dir, cgroup.path, host.ready, listen, metrics, o.clientSockets), null, 2),
    );
    // The workers get an explicit empty execArgv, so --cpu-prof would profile the main thread only;
    // V8's --prof is process-wide and writes one tick log per isolate (main and every worker).
    const profDir = path.join(dir, 'prof');
    mkdirSync(profDir, { recursive: true });
    // GPA_BENCH_AGENT_NODE_ARGS: extra node/V8 flags for the agent only (experiments such as
    // --perf-basic-prof for `perf`, or GC flags), split on spaces.
    const extra = (process.env.GPA_BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter((a) => a.length > 0);
    // As the systemd unit runs it (lib/status/systemd-unit.ts).
    const nodeArgs = ['--no-node-snapshot', ...(o.profile ? ['--prof'] : []), ...extra];
    // GPA_BENCH_AGENT_STDOUT: a file for the agent's stdout (e.g. with --trace-gc in the flags above).
    const stdoutFile = process.env.GPA_BENCH_AGENT_STDOUT;
    const stdout = stdoutFile ? openSync(stdoutFile, 'a') : 'ignore';
    const child = spawn(o.node ?? process.execPath, [...nodeArgs, GPA, 'run', '--config', configFile], {
      cwd: profDir,
      stdio: ['ignore', stdout, 'pipe'],
      // MALLOC_ARENA_MAX=2 as the shipped systemd unit sets it (fewer glibc arenas across threads).
      env: { ...process.env, NODE_OPTIONS: '', MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2' },
    });
    if (typeof stdout === 'number') closeSync(stdout);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d).slice(-20000)));
    cleanups.push(() => stopChild(child, 10000));
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code, sig) =>
        reject(new Error(`the agent exited (${code ?? sig}) during start-up:\n${stderr.slice(-4000)}`)),
      ),
    );
    exited.catch(() => {});
    const url = `http://${host.ready.imds.host}:${host.ready.imds.port}`;
    const first = await Promise.race([
      untilRedirected(`${url}/metadata/instance?api-version=2021-02-01`, cgroup.procs, 30000),
      exited,
    ]);
    o.log(`agent pid ${child.pid} serving ${url} through the redirect (${first.split('\r\n')[0]})`);
    const pid = child.pid!;
    let rssMax = 0;
    const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssBytes(pid) / 1048576 || 0)), 250);
    cleanups.push(() => clearInterval(sampler));
    const rssMiB = () => rssBytes(pid) / 1048576;
    return {
      name: 'agent',
      base: url,
      pids: () => [pid],
      mainPid: pid,
      hostPid: host.pid,
      clientCgroupProcs: cgroup.procs,
      cgroupPath: cgroup.path,
      rssMiB,
      rssMax: () => rssMax,
      describe: () => ({
        pid,
        config: agentConfig(dir, cgroup.path, host.ready, listen, metrics, o.clientSockets),
        policy: {
          privileges: policy.privileges,
          roles: 10,
          identities: 16,
          roleAssignments: 10,
          defaultAccess: 'deny',
        },
        hostModes: { imds: 'enforce', wireserver: 'enforce' },
        profiled: o.profile,
      }),
      async finish() {
        clearInterval(sampler);
        await new Promise((r) => setTimeout(r, 3000));
        const rssMiBAfter = rssMiB();
        if (!o.profile) return { rssMiBAfter };
        await stopChild(child, 10000);
        return { rssMiBAfter, profile: summarizeTickLogs(profDir) };
      },
      stop: undo,
    };
  } catch (e) {
    await undo();
    throw e;
  }
}
