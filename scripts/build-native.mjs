#!/usr/bin/env node
// Builds the BPF object (clang -target bpf) and the addon (node-gyp, the default path).
//   node scripts/build-native.mjs [--if-stale] [--bpf-only]
// --if-stale rebuilds only what is older than its sources. Never downloads: node-gyp gets the
// running Node's headers through npm_config_nodedir (scripts/bootstrap.mjs sets it).
// Outputs: build/bpf/redirect.bpf.o and build/Release/gpa_native.node (lib/redirector finds both).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const ifStale = args.has('--if-stale');
const log = (msg) => {
  if (!process.env.GPA_BOOTSTRAP_QUIET) process.stderr.write(`[build-native] ${msg}\n`);
};

function newestMtime(paths) {
  let newest = 0;
  for (const p of paths) {
    if (!existsSync(p)) continue;
    const st = statSync(p);
    if (st.isDirectory()) {
      newest = Math.max(newest, newestMtime(readdirSync(p).map((n) => path.join(p, n))));
    } else {
      newest = Math.max(newest, st.mtimeMs);
    }
  }
  return newest;
}

function isStale(output, sources) {
  if (!ifStale || !existsSync(output)) return true;
  return statSync(output).mtimeMs < newestMtime(sources);
}

function run(cmd, argv, env = process.env) {
  log(`$ ${cmd} ${argv.join(' ')}`);
  const r = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit', env });
  if (r.status !== 0) {
    process.stderr.write(`[build-native] ERROR: '${cmd}' failed (exit ${r.status ?? r.signal}).\n`);
    process.exit(1);
  }
}

function hostTriple() {
  const r = spawnSync('gcc', ['-dumpmachine'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : `${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;
}

function buildBpf() {
  const src = path.join(root, 'native', 'bpf', 'redirect.bpf.c');
  const out = path.join(root, 'build', 'bpf', 'redirect.bpf.o');
  if (
    !isStale(out, [
      src,
      path.join(root, 'native', 'bpf', 'redirect.h'),
      path.join(root, 'native', 'bpf', 'kernel_types.h'),
    ])
  )
    return;
  mkdirSync(path.dirname(out), { recursive: true });
  // -I for <asm/types.h>, which Debian keeps under the multiarch include folder.
  run('clang', [
    '-O2',
    '-g',
    '-target',
    'bpf',
    '-Wall',
    '-Werror',
    `-I/usr/include/${hostTriple()}`,
    '-c',
    src,
    '-o',
    out,
  ]);
}

/** The running Node's own headers: npm_config_nodedir, else the install prefix. Never a download. */
export function nodeDir() {
  const candidates = [process.env.npm_config_nodedir, path.resolve(path.dirname(process.execPath), '..')];
  for (const dir of candidates) {
    if (dir && existsSync(path.join(dir, 'include', 'node', 'node_api.h'))) return dir;
  }
  process.stderr.write(
    `[build-native] ERROR: no Node headers next to ${process.execPath} (include/node/node_api.h).\n` +
      '  Install them (Debian: apt-get install -y libnode-dev) or set npm_config_nodedir to a Node install prefix.\n',
  );
  process.exit(1);
}

function buildAddon() {
  const out = path.join(root, 'build', 'Release', 'gpa_native.node');
  const sources = [
    path.join(root, 'native', 'src'),
    path.join(root, 'native', 'bpf', 'redirect.h'),
    path.join(root, 'binding.gyp'),
  ];
  if (!isStale(out, sources)) return;
  const nodeGyp = path.join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (!existsSync(nodeGyp)) {
    process.stderr.write('[build-native] ERROR: node-gyp is missing; run `npm ci` first.\n');
    process.exit(1);
  }
  run(process.execPath, [nodeGyp, 'rebuild', '--jobs', 'max', `--nodedir=${nodeDir()}`]);
}

// Addon first: `node-gyp rebuild` empties build/, which also holds the BPF object.
if (!args.has('--bpf-only')) buildAddon();
if (process.platform === 'linux') buildBpf();
