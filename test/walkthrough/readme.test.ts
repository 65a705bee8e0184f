/**
 * README.md against the code: the quick start is the two commands, every `gpa` invocation names a real
 * command with flags its --help lists, the config table matches the agent's validator and defaults,
 * the troubleshooting table quotes messages the agent really prints, and every document is linked.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { validateConfig } from '../../lib/agent/index.js';
import { compilePolicyPure } from '../../lib/policy/index.js';
import {
  keyLatchMessage,
  listenerModuleStatus,
  ProvisioningTracker,
  policyEnforcementNote,
  redirectorModuleStatus,
} from '../../lib/status/index.js';
import { repoRoot } from './doc-blocks.js';

const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
const CLI = path.join(repoRoot, 'bin', 'gpa.mjs');

function gpa(args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}`);
  assert.notEqual(start, -1, `README has a "## ${title}" section`);
  const end = readme.indexOf('\n## ', start + 4);
  return readme.slice(start, end === -1 ? undefined : end);
}

function tableRows(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('|---'))
    .slice(1)
    .map((l) =>
      l
        .slice(2, -2)
        .split(/ (?<!\\)\| /)
        .map((c) => c.trim()),
    );
}

test('quick start is exactly npm start and npm test, and says npm test is the test command', () => {
  const q = section('Quick start');
  const commands = [...q.matchAll(/^ {4}(\S.*?)\s+#/gm)].map((m) => m[1]);
  assert.deepEqual(commands, ['npm start', 'npm test']);
  assert.match(q, /`npm test` is the test command/);
});

test('every gpa invocation in the README is a real command with flags its --help lists', () => {
  const usage = gpa(['--help']).out;
  const invocations = [...readme.matchAll(/\bgpa ((?:--status|--version|[a-z]+)[^`|\n]*)/g)].map((m) => m[1]!.trim());
  assert.ok(invocations.length >= 15, `found ${invocations.length} gpa invocations`);
  const helpCache = new Map<string, string>();
  for (const inv of invocations) {
    const [cmd] = inv.split(/\s+/);
    if (cmd === '--version') continue;
    const name = cmd === '--status' ? 'status' : cmd!;
    assert.match(usage, new RegExp(`^  ${name} `, 'm'), `'gpa ${inv}': no command ${name}`);
    if (name === 'demo') continue; // `gpa demo` has no --help: it runs the demo
    if (!helpCache.has(name)) {
      const h = gpa([name, '--help']);
      assert.equal(h.code, 0, `gpa ${name} --help: ${h.out}`);
      helpCache.set(name, h.out);
    }
    for (const flag of inv.match(/--[a-z][a-z-]*/g) ?? []) {
      if (flag === '--status' || (flag === '--user' && name === 'exec')) continue;
      assert.ok(helpCache.get(name)!.includes(flag), `'gpa ${inv}': gpa ${name} --help does not list ${flag}`);
    }
  }
});

test('the config table lists the keys and defaults the agent validates', () => {
  const install = section('Install (from a clone)');
  const rows = tableRows(install.slice(install.indexOf('### The config file')));
  const keys = rows.map((r) => r[0]!.replace(/`/g, '').split('.')[0]!);
  const { warnings } = validateConfig(Object.fromEntries(keys.map((k) => [k, undefined])));
  assert.deepEqual(warnings, [], 'every key in the table is one the agent knows');
  const defaults = validateConfig({}).config as unknown as Record<string, unknown>;
  assert.deepEqual(new Set(keys), new Set(Object.keys(defaults)), 'and the table lists every key');
  for (const [key, dflt] of rows) {
    const k = key!.replace(/`/g, '');
    const m = /^`(.*)`/.exec(dflt!);
    if (!m || k.includes('.') || k === 'cgroupPath' || k === 'rulesFolder') continue;
    const value = m[1]!;
    const actual = defaults[k];
    if (typeof actual === 'string') assert.equal(value, actual, k);
    else assert.deepEqual(JSON.parse(value), actual, k);
  }
  assert.equal(defaults.cgroupPath, null);
});

test('the troubleshooting table quotes messages the agent prints', () => {
  const printed = [
    redirectorModuleStatus({ state: 'unsupported' }).message,
    redirectorModuleStatus({ state: 'failed', lastError: { op: 'attach', message: 'x' } }).message,
    listenerModuleStatus({ bound: false, address: '127.0.0.1', port: 3080, error: 'listen EADDRINUSE' }).message,
    keyLatchMessage({ health: 'degraded', statusMessage: 'timeout', secureChannelState: 'x' }),
    // A broken WireServer rule document, as the agent reports it in status.json.
    keyLatchMessage({
      health: 'ok',
      statusMessage: 'x',
      secureChannelState: 'x',
      policy: policyEnforcementNote(
        compilePolicyPure({
          modes: { imds: 'disabled', wireserver: 'enforce', hostga: 'enforce' },
          rules: { wireserver: '{' },
        }).problems,
      ),
    }),
    new ProvisioningTracker().snapshot().errorMessage,
    readFileSync(path.join(repoRoot, 'lib', 'agent', 'agent.ts'), 'utf8'),
    readFileSync(path.join(repoRoot, 'lib', 'status', 'doctor-checks.ts'), 'utf8'),
    readFileSync(path.join(repoRoot, 'lib', 'cli', 'commands', 'status.ts'), 'utf8'),
  ].join('\n');
  const rows = tableRows(section('Troubleshoot'));
  assert.ok(rows.length >= 10);
  let quoted = 0;
  for (const [symptom] of rows) {
    for (const m of symptom!.matchAll(/`([^`]+)`/g)) {
      const q = m[1]!;
      if (!/ /.test(q) || q.startsWith('--')) continue;
      for (const piece of q.split('…').map((p) => p.replace(/^[:; ]+|[:; ]+$/g, ''))) {
        if (piece) assert.ok(printed.includes(piece), `README troubleshooting quotes "${piece}", which nothing prints`);
      }
      quoted++;
    }
  }
  assert.ok(quoted >= 6, `${quoted} quoted messages`);
});

test('the README links every document, and every link resolves', () => {
  const docs = readdirSync(path.join(repoRoot, 'docs')).filter((f) => /\.(md|json)$/.test(f));
  for (const d of docs) assert.ok(readme.includes(`(docs/${d}`), `README links docs/${d}`);
  for (const m of readme.matchAll(/\]\(([^)#]+)(#[^)]*)?\)/g)) {
    assert.ok(existsSync(path.join(repoRoot, m[1]!)), `README links ${m[1]}, which does not exist`);
  }
});
