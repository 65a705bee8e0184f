#!/usr/bin/env node
// Self-bootstrapping setup: installs what is missing (apt packages, npm packages, BPF objects, the
// addon, TypeScript output) so that `npm test` and `npm start` work on a fresh Debian/Ubuntu machine.
// Plain Node with no dependencies: it runs before node_modules exists.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const quiet = !!process.env.GPA_BOOTSTRAP_QUIET;
const log = (msg) => {
  if (!quiet) process.stderr.write(`[bootstrap] ${msg}\n`);
};

/** Debian package that provides each tool or header we need, checked only when missing. */
const APT_NEEDS = [
  { pkg: 'clang', present: () => has('clang') },
  { pkg: 'llvm', present: () => has('llvm-strip') || has('llc') },
  { pkg: 'libbpf-dev', present: () => existsSync('/usr/include/bpf/libbpf.h') },
  { pkg: 'libelf-dev', present: () => existsSync('/usr/include/libelf.h') },
  { pkg: 'bpftool', present: () => has('bpftool') },
  { pkg: 'iproute2', present: () => has('ip') },
  { pkg: 'make', present: () => has('make') },
  { pkg: 'g++', present: () => has('g++') },
  { pkg: 'python3', present: () => has('python3') },
  { pkg: 'curl', present: () => has('curl') },
];

function has(cmd) {
  return (
    spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0 ||
    existsSync(`/usr/sbin/${cmd}`) ||
    existsSync(`/sbin/${cmd}`)
  );
}

function fail(message) {
  process.stderr.write(`\n[bootstrap] ERROR: ${message}\n\n`);
  process.exit(1);
}

function run(cmd, argv, opts = {}) {
  log(`$ ${cmd} ${argv.join(' ')}`);
  const r = spawnSync(cmd, argv, { stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit', cwd: root, ...opts });
  if (r.status !== 0) fail(`'${cmd} ${argv.join(' ')}' failed with exit code ${r.status}`);
}

function ensureAptPackages() {
  if (process.platform !== 'linux') return;
  const missing = APT_NEEDS.filter((n) => !n.present()).map((n) => n.pkg);
  if (missing.length === 0) return;
  const cmd = `apt-get update && apt-get install -y ${missing.join(' ')}`;
  if (process.getuid?.() !== 0)
    fail(`missing system packages: ${missing.join(', ')}. Run as root:\n  sudo sh -c '${cmd}'`);
  if (!has('apt-get'))
    fail(`missing system packages: ${missing.join(', ')} and no apt-get here. Install them with your package manager.`);
  log(`installing missing system packages: ${missing.join(', ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env });
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env });
}

function ensureBpffs() {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return;
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  if (/ - bpf /.test(mounts) && mounts.split('\n').some((l) => l.split(' ')[4] === '/sys/fs/bpf')) return;
  log('mounting bpffs at /sys/fs/bpf');
  spawnSync('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf'], { stdio: 'inherit' });
}

/** Points node-gyp at the running Node's own headers so no download is ever attempted. */
function nodeHeadersEnv() {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) {
    return { ...process.env, npm_config_nodedir: prefix };
  }
  return process.env;
}

function ensureNpmPackages() {
  const stamp = path.join(root, 'node_modules', '.package-lock.json');
  const lock = path.join(root, 'package-lock.json');
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= statSync(lock).mtimeMs) return;
  log('$ npm ci');
  const ci = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], {
    cwd: root,
    env: nodeHeadersEnv(),
    stdio: ['ignore', quiet ? 'ignore' : 'inherit', 'pipe'],
    encoding: 'utf8',
  });
  if (ci.status === 0) return;
  // Registry mirrors that carry only this platform's builds of a package with per-platform optional
  // dependencies (biome, typescript 7) make npm write a lock that `npm ci` then calls out of sync.
  // `npm install --no-save` installs the same locked versions without rewriting the lock.
  if (/EUSAGE/.test(ci.stderr ?? '') && /Missing: .* from lock file/.test(ci.stderr ?? '')) {
    log("npm ci: the lock lacks other platforms' optional packages; installing the locked versions with npm install");
    run('npm', ['install', '--no-save', '--no-audit', '--no-fund'], { env: nodeHeadersEnv() });
    return;
  }
  process.stderr.write(ci.stderr ?? '');
  fail(`'npm ci' failed with exit code ${ci.status}`);
}

function ensureNative() {
  const script = path.join(root, 'scripts', 'build-native.mjs');
  if (!existsSync(script)) return;
  run(process.execPath, [script, '--if-stale'], { env: nodeHeadersEnv() });
}

ensureAptPackages();
ensureBpffs();
ensureNpmPackages();
ensureNative();
if (args.has('--build-only')) {
  run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
}
