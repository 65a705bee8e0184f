// The facts a reader needs to interpret the numbers (Node version, CPU, kernel, tool versions), and
// the bench's own setup: wrk and nginx come from apt when missing.
import { execFileSync, spawnSync } from 'node:child_process';
import os from 'node:os';
import { nginxVersion } from './nginx.js';

export interface SysInfo {
  hostname: string;
  node: string;
  v8: string;
  /** The Node version the agent runs on (`--agent-node`; the same as `node` by default). */
  agentNode: string;
  cpuModel: string;
  cores: number;
  kernel: string;
  os: string;
  memoryGiB: number;
  wrk: string;
  nginx: string;
  loadAverage: number[];
}

/** The version a node binary reports; throws a clear error when it is not one. */
export function nodeVersionOf(binary: string): string {
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  const v = (r.stdout ?? '').trim();
  if (r.status !== 0 || !/^v\d+\.\d+\.\d+/.test(v)) {
    throw new Error(`--agent-node ${binary}: not a runnable node binary (${r.error?.message ?? (r.stderr || v)})`);
  }
  return v;
}

export function sysInfo(agentNode: string | null = null): SysInfo {
  let osName = os.type();
  try {
    const rel = execFileSync('sh', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"'], { encoding: 'utf8' }).trim();
    if (rel) osName = rel;
  } catch {}
  return {
    hostname: os.hostname(),
    node: process.version,
    v8: process.versions.v8,
    agentNode: agentNode === null ? process.version : nodeVersionOf(agentNode),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    kernel: os.release(),
    os: osName,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    wrk: firstLine(spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout ?? ''),
    nginx: nginxVersion(),
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

function firstLine(s: string): string {
  return (s.split('\n')[0] ?? '').replace(/ Copyright.*/, '').trim() || 'unknown';
}

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd} || test -x /usr/sbin/${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Installs the bench's system tools from apt when missing (root), or explains how. */
export function ensureTools(needNginx: boolean, needBpftool: boolean, needPerf = false, needCurl = false): void {
  const missing: string[] = [];
  if (!has('wrk')) missing.push('wrk');
  if (needNginx && !has('nginx')) missing.push('nginx');
  if (needBpftool && !has('bpftool')) missing.push('bpftool');
  if (needPerf && !has('perf')) missing.push('linux-perf'); // the package; its command is perf
  if (needCurl && !has('curl')) missing.push('curl');
  if (missing.length === 0) return;
  const cmd = `apt-get update && apt-get install -y ${missing.join(' ')}`;
  if (process.getuid?.() !== 0)
    throw new Error(`the bench needs ${missing.join(', ')}. Install as root:\n  sudo sh -c '${cmd}'`);
  if (!has('apt-get')) throw new Error(`the bench needs ${missing.join(', ')}; install them with your package manager`);
  process.stderr.write(`[bench] installing ${missing.join(', ')} from apt\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const argv of [
    ['update', '-qq'],
    ['install', '-y', '-qq', '--no-install-recommends', ...missing],
  ]) {
    const r = spawnSync('apt-get', argv, { stdio: 'inherit', env });
    if (r.status !== 0) throw new Error(`apt-get ${argv.join(' ')} failed (exit ${r.status})`);
  }
  // nginx from apt starts a system service; the bench runs its own instance and needs none.
  if (missing.includes('nginx'))
    spawnSync('sh', ['-c', 'systemctl stop nginx 2>/dev/null || service nginx stop 2>/dev/null'], { stdio: 'ignore' });
}
