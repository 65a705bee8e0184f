// Starting and stopping the processes under test. Every target runs in its own process so that the
// harness's own event loop never shares a thread with what it measures.
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import net from 'node:net';

export interface Started<T> {
  child: ChildProcess;
  ready: T;
  /** Everything the child wrote to stderr so far (for error messages). */
  stderr(): string;
}

/**
 * Spawns a process and waits for a line `READY <json>` on its stdout (or, with readyLine unset,
 * only for the spawn). Rejects with the child's stderr if it exits first or takes longer than
 * timeoutMs.
 */
export function spawnReady<T>(
  cmd: string,
  args: string[],
  opts: SpawnOptions & { timeoutMs?: number; name: string },
): Promise<Started<T>> {
  const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d;
    if (err.length > 200_000) err = err.slice(-100_000);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${opts.name} did not become ready within ${opts.timeoutMs ?? 20000} ms:\n${tail(err)}`));
    }, opts.timeoutMs ?? 20000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`could not start ${opts.name} (${cmd}): ${e.message}`));
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${opts.name} exited (${code ?? signal}) before it was ready:\n${tail(err)}${tail(out)}`));
    });
    child.stdout?.on('data', (d: Buffer) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('READY '));
      if (!line) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.stdout?.removeAllListeners('data');
      child.stdout?.resume();
      resolve({ child, ready: JSON.parse(line.slice(6)) as T, stderr: () => err });
    });
  });
}

/** Sends SIGTERM, then SIGKILL after graceMs; resolves when the process is gone. */
export function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Waits until something accepts TCP connections on host:port. */
export async function waitForPort(host: string, port: number, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} is not accepting connections on ${host}:${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** An ephemeral port that was free a moment ago on host (for programs that need a port number). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function tail(s: string): string {
  return s.length > 4000 ? `...${s.slice(-4000)}` : s;
}
