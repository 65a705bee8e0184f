/**
 * Start-up self-test: a short-lived child process connects to a sentinel rule on a loopback alias
 * and must arrive at our test listener attributed to itself; our own connect to the same sentinel
 * must reach the real destination (no loop). Run it after start() and before reporting RUNNING.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, rmdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { discoverCgroup2Root, inPidNamespace, ownCgroupDir } from './cgroup.js';
import { lookupConnection, markFailed, removeRule, setRule, status } from './redirector.js';
import type { ConnOrigin } from './types.js';

export interface SelfTestOptions {
  /** Loopback alias used as the sentinel destination. Default 127.0.77.77. */
  sentinelAddress?: string;
  /** Whole-test deadline. Default 10000 ms. */
  timeoutMs?: number;
}

export interface SelfTestResult {
  ok: boolean;
  reason?: string;
  /** What the child's connect was attributed to. */
  origin?: ConnOrigin;
  childPid?: number;
}

// The child: connect, print the first line the server sends, exit.
const CHILD_SCRIPT = `const s=require('net').connect(+process.argv[2],process.argv[1]);let b='';
s.on('data',d=>{b+=d;if(b.includes('\\n')){process.stdout.write(b);s.destroy();}});
s.on('error',e=>{process.stdout.write('error '+e.code+'\\n');});`;

function listen(server: net.Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve((server.address() as net.AddressInfo).port));
  });
}

function firstLine(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    let buf = '';
    const done = (v: string) => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    s.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) done(buf.trim());
    });
    s.on('error', (e: NodeJS.ErrnoException) => done(`error ${e.code}`));
  });
}

/** Runs the self-test; on failure also marks status() failed with op 'self-test'. */
export async function selfTest(opts: SelfTestOptions = {}): Promise<SelfTestResult> {
  const sentinel = opts.sentinelAddress ?? '127.0.77.77';
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const st = status();
  if (st.state !== 'running') return fail(`redirector is ${st.state}, not running`);
  const proxy = net.createServer();
  const upstream = net.createServer((s) => s.end('upstream\n'));
  const seen: ConnOrigin[] = [];
  proxy.on('connection', (s) => {
    const o = lookupConnection(
      { address: s.remoteAddress ?? '', port: s.remotePort ?? 0 },
      { address: s.localAddress ?? '', port: s.localPort ?? 0 },
    );
    if (o) seen.push(o);
    s.end(o ? 'proxy\n' : 'proxy-unattributed\n');
    s.on('error', () => {});
  });
  let sentinelPort = 0;
  try {
    const proxyPort = await listen(proxy, '127.0.0.1');
    sentinelPort = await listen(upstream, sentinel);
    setRule({ dst: sentinel, dstPort: sentinelPort, proxy: '127.0.0.1', proxyPort });
    const child = await runChild(sentinel, sentinelPort, st.cgroupPath, timeoutMs);
    if (child.output !== 'proxy') {
      return fail(`sentinel connect from a child was not redirected and attributed (child saw '${child.output}')`);
    }
    const origin = seen[0];
    if (!origin) return fail('child reached the listener but no attribution record was found');
    const pidOk = (process.platform === 'linux' && inPidNamespace()) || origin.pid === child.pid;
    // The caller as the kernel saw it: our uid on Linux; on Windows a logon session (no uids there).
    const callerOk =
      origin.platform === 'win32' ? typeof origin.logonId === 'bigint' : origin.uid === process.getuid?.();
    if (!pidOk || !callerOk || origin.origPort !== sentinelPort || origin.origDst !== sentinel) {
      return fail(
        `attribution mismatch: expected pid ${child.pid} uid ${process.getuid?.()} dst ${sentinel}:${sentinelPort}, got pid ${origin.pid} uid ${origin.uid} dst ${origin.origDst}:${origin.origPort}`,
        origin,
      );
    }
    const own = await firstLine(sentinel, sentinelPort, timeoutMs);
    if (own !== 'upstream')
      return fail(`the agent's own connect to the sentinel did not reach it (saw '${own}'): it would loop`);
    return { ok: true, origin, childPid: child.pid };
  } catch (err) {
    return fail(`self-test could not run: ${(err as Error).message}`);
  } finally {
    if (sentinelPort) {
      try {
        removeRule(sentinel, sentinelPort);
      } catch {
        // already stopped
      }
    }
    proxy.close();
    upstream.close();
  }
}

function fail(reason: string, origin?: ConnOrigin): SelfTestResult {
  markFailed('self-test', reason);
  return origin ? { ok: false, reason, origin } : { ok: false, reason };
}

/** Spawns the child inside the attach cgroup (moving it there first if we are not under it). */
async function runChild(
  host: string,
  port: number,
  attachCgroup: string,
  timeoutMs: number,
): Promise<{ pid: number; output: string }> {
  const argv = [process.execPath, '-e', CHILD_SCRIPT, host, String(port)];
  // Windows has no cgroups: the program is attached to the whole network compartment.
  if (process.platform === 'win32') return collectChild(spawn(argv[0]!, argv.slice(1), CHILD_STDIO), timeoutMs);
  const own = ownCgroupDir(discoverCgroup2Root() ?? '');
  const inside = own !== undefined && (own === attachCgroup || own.startsWith(attachCgroup + path.sep));
  // In a pid namespace the agent is exempt by its cgroup, which a child would inherit: the child
  // then runs in a short-lived cgroup of its own under the attach point.
  const scratch = inPidNamespace() ? path.join(attachCgroup, `gpa-selftest-${process.pid}`) : null;
  if (scratch) mkdirSync(scratch, { recursive: true });
  const target = scratch ?? (inside ? null : attachCgroup);
  const child =
    target === null
      ? spawn(argv[0]!, argv.slice(1), CHILD_STDIO)
      : spawn('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', target, ...argv], CHILD_STDIO);
  try {
    return await collectChild(child, timeoutMs);
  } finally {
    if (scratch) {
      try {
        rmdirSync(scratch);
      } catch {
        // a cgroup is removable only once empty; the child has exited, so this is best effort
      }
    }
  }
}

const CHILD_STDIO: SpawnOptions = { stdio: ['ignore', 'pipe', 'ignore'] };

/** The child's pid and what it printed, once it exited and its output was read to the end. */
async function collectChild(child: ChildProcess, timeoutMs: number): Promise<{ pid: number; output: string }> {
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    await once(child, 'close');
  } finally {
    clearTimeout(timer);
  }
  return { pid: child.pid ?? 0, output: out.trim() };
}
