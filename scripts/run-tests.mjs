#!/usr/bin/env node
// Runs the compiled tests with Node's built-in runner. Arguments are path filters, e.g.
// `node scripts/run-tests.mjs redirector policy` runs dist/test/**/ files whose path contains either.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sweepStaleLeftovers } from './sweep-stale.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const testRoot = path.join(root, 'dist', 'test');

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const files = walk(testRoot)
  .filter((f) => filters.length === 0 || filters.some((x) => path.relative(testRoot, f).includes(x)))
  .sort();
if (files.length === 0) {
  process.stderr.write(`no test files under ${testRoot} match ${filters.join(', ') || '(all)'}\n`);
  process.exit(1);
}
// An interrupted earlier run (killed machine, SIGKILL) may have left cgroups and pins behind.
for (const p of sweepStaleLeftovers()) {
  process.stderr.write(p.startsWith('!') ? `could not remove stale ${p.slice(1)}\n` : `removed stale ${p}\n`);
}
const runTests = (list, env = process.env) =>
  spawnSync(
    process.execPath,
    ['--test', '--test-reporter=spec', '--test-concurrency=1', '--test-timeout=180000', ...list],
    { stdio: 'inherit', cwd: root, env },
  ).status ?? 1;
let status = runTests(files);
// The proxy tests run with the addon's client sockets (the agent's default on Linux); run them again
// over net.Socket, the path Windows and `clientSockets: "node"` take.
const proxyFiles = files.filter(
  (f) => path.relative(testRoot, f).startsWith(`proxy${path.sep}`) && !f.endsWith('native-io.test.js'),
);
if (process.platform === 'linux' && proxyFiles.length > 0 && process.env.GPA_TEST_CLIENT_SOCKETS === undefined) {
  process.stderr.write('\n# the proxy tests again, with client sockets over net.Socket\n');
  const again = runTests(proxyFiles, { ...process.env, GPA_TEST_CLIENT_SOCKETS: 'node' });
  if (status === 0) status = again;
}
process.exit(status);
