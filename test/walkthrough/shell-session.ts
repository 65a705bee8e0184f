/**
 * Runs the walkthrough's shell blocks the way a reader would: every command gets the page's setup
 * lines first (alias gpa, cd into the work folder, CG, cg, IMDS/WS/METRICS/AGENT), with the page's fixed
 * ports, folder and cgroup swapped for this test's own.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { repoRoot } from './doc-blocks.js';

export interface Substitutions {
  workDir: string;
  cgroupName: string;
  imdsPort?: number;
  wireserverPort?: number;
  metricsPort: number;
  listenerPort: number;
}

/** The page's literal values → this run's. Order matters: the folder contains the cgroup's name. */
export function substitute(text: string, s: Substitutions): string {
  let t = text.replaceAll('/tmp/gpa-walkthrough', s.workDir).replaceAll('/gpa-walkthrough', `/${s.cgroupName}`);
  if (s.imdsPort !== undefined)
    t = t.replace(/^IMDS=http:\/\/127\.254\.169\.254$/m, `IMDS=http://127.254.169.254:${s.imdsPort}`);
  if (s.wireserverPort !== undefined)
    t = t.replace(/^WS=http:\/\/127\.63\.129\.16$/m, `WS=http://127.63.129.16:${s.wireserverPort}`);
  t = t.replace(/^METRICS=http:\/\/127\.0\.0\.1:9564\/metrics$/m, `METRICS=http://127.0.0.1:${s.metricsPort}/metrics`);
  return t.replace(/^AGENT=http:\/\/127\.0\.0\.1:3180$/m, `AGENT=http://127.0.0.1:${s.listenerPort}`);
}

export interface ShellResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function script(setup: string, body: string, s: Substitutions): string {
  return `shopt -s expand_aliases\nset -o pipefail\n${substitute(setup, s)}\n${substitute(body, s)}\n`;
}

/** Runs one command or script after the setup lines; bounded by `timeoutMs`. */
export function runShell(setup: string, body: string, s: Substitutions, timeoutMs = 30_000): Promise<ShellResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script(setup, body, s)], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-running command (a "terminal") in its own process group, so Ctrl-C can be sent to all of it. */
export interface Terminal {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Waits until stdout has a line matching `re` (bounded); rejects if the process exits first. */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Ctrl-C: SIGINT to the process group, then waits for the exit (SIGKILL after `graceMs`). */
  interrupt(graceMs?: number): Promise<number | null>;
  /** SIGKILL to the whole group if anything is left (cleanup on failure). */
  kill(): void;
}

export function startTerminal(setup: string, body: string, s: Substitutions): Terminal {
  const child = spawn('bash', ['-c', script(setup, body, s)], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const signalGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // the group is gone already
    }
  };
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitForLine(re, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const t = setInterval(() => {
          const line = out.split('\n').find((l) => re.test(l));
          if (line) {
            clearInterval(t);
            resolve(line);
          } else if (child.exitCode !== null || Date.now() > deadline) {
            clearInterval(t);
            reject(new Error(`no line matching ${re} (exit ${child.exitCode}):\n${out}\n${err}`));
          }
        }, 50);
        const deadline = Date.now() + timeoutMs;
      });
    },
    async interrupt(graceMs = 10_000) {
      if (child.exitCode !== null) return child.exitCode;
      signalGroup('SIGINT');
      const t = setTimeout(() => signalGroup('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    kill() {
      signalGroup('SIGKILL');
    },
  };
}
