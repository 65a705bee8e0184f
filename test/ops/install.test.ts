import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { CAPABILITIES, renderUnit } from '../../lib/status/index.js';

const bin = new URL('../../../bin/gpa.mjs', import.meta.url).pathname;
const gpa = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 });
const root = mkdtempSync(path.join(tmpdir(), 'gpa-install-'));
after(() => rmSync(root, { recursive: true, force: true }));

const unitFile = path.join(root, 'etc/systemd/system/azure-proxy-agent.service');
const configFile = path.join(root, 'etc/azure/proxy-agent.json');

/** Directive values of a unit file (last one wins, like systemd for these keys). */
function directives(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const x = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (x) m.set(x[1]!, x[2]!);
  }
  return m;
}

test('install into a staging root writes a sandboxed unit and a default config, and never calls systemctl', () => {
  const r = gpa('install', '--root', root);
  assert.equal(r.status, 0, r.stderr);
  const d = directives(readFileSync(unitFile, 'utf8'));
  assert.equal(d.get('Restart'), 'always');
  assert.equal(d.get('ProtectSystem'), 'strict');
  assert.equal(d.get('NoNewPrivileges'), 'yes');
  assert.equal(d.get('IPAddressDeny'), 'any');
  assert.deepEqual(d.get('IPAddressAllow')!.split(' ').sort(), [
    '127.0.0.0/8',
    '168.63.129.16/32',
    '169.254.169.254/32',
    '::1/128',
  ]);
  const caps = d.get('CapabilityBoundingSet')!.split(' ');
  const allowed = [
    'CAP_BPF',
    'CAP_NET_ADMIN',
    'CAP_SYS_ADMIN',
    'CAP_SYS_RESOURCE',
    'CAP_DAC_READ_SEARCH',
    'CAP_SYS_PTRACE',
  ];
  assert.ok(caps.length > 0 && caps.every((c) => allowed.includes(c)), caps.join(' '));
  assert.match(d.get('ExecStart')!, /bin\/gpa\.mjs run --config \/etc\/azure\/proxy-agent\.json$/);
  assert.equal(d.get('StateDirectoryMode'), '0700');
  // Each kept capability is justified in the unit itself.
  for (const c of caps) assert.match(readFileSync(unitFile, 'utf8'), new RegExp(`^# ${c}: .{10,}`, 'm'));
  const cfg = JSON.parse(readFileSync(configFile, 'utf8')) as { logFolder: string };
  assert.equal(cfg.logFolder, '/var/lib/azure-proxy-agent');
  assert.equal(statSync(unitFile).mode & 0o777, 0o644);
  assert.doesNotMatch(r.stdout, /enabled/);
});

test('a second install keeps the operator’s config', () => {
  writeFileSync(configFile, '{"logFolder":"/srv/gpa"}\n');
  const r = gpa('install', '--root', root);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /kept existing/);
  assert.equal(readFileSync(configFile, 'utf8'), '{"logFolder":"/srv/gpa"}\n');
});

test('unit dir and config path are parameters', () => {
  const unitDir = path.join(root, 'units');
  const r = gpa('install', '--root', root, '--unit-dir', unitDir, '--config', '/opt/gpa/agent.json');
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    readFileSync(path.join(unitDir, 'azure-proxy-agent.service'), 'utf8'),
    /--config \/opt\/gpa\/agent\.json/,
  );
  assert.ok(existsSync(path.join(root, 'opt/gpa/agent.json')));
});

test('uninstall removes the unit and the agent’s pins, keeps config and state; --purge removes them too', () => {
  writeFileSync(configFile, '{"logFolder":"/var/lib/azure-proxy-agent","pinDir":"/sys/fs/bpf/gpa"}\n');
  mkdirSync(path.join(root, 'sys/fs/bpf/gpa'), { recursive: true });
  mkdirSync(path.join(root, 'sys/fs/bpf/other-tool'), { recursive: true });
  mkdirSync(path.join(root, 'var/lib/azure-proxy-agent'), { recursive: true });
  const r = gpa('uninstall', '--root', root);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(!existsSync(unitFile));
  assert.ok(!existsSync(path.join(root, 'sys/fs/bpf/gpa')));
  assert.ok(existsSync(path.join(root, 'sys/fs/bpf/other-tool')), 'other tools’ pins are left alone');
  assert.ok(existsSync(configFile));
  assert.ok(existsSync(path.join(root, 'var/lib/azure-proxy-agent')));
  const p = gpa('uninstall', '--root', root, '--purge');
  assert.equal(p.status, 0);
  assert.ok(!existsSync(configFile));
  assert.ok(!existsSync(path.join(root, 'var/lib/azure-proxy-agent')));
});

test('renderUnit quotes paths with spaces and lists only the documented capabilities', () => {
  const u = renderUnit({
    nodePath: '/opt/my node/node',
    gpaPath: '/x/bin/gpa.mjs',
    configPath: '/etc/azure/proxy-agent.json',
  });
  assert.match(u, /^ExecStart="\/opt\/my node\/node" /m);
  assert.match(u, /^Environment=MALLOC_ARENA_MAX=2$/m);
  assert.equal(CAPABILITIES.length, 6);
});

test('systemd-analyze accepts the unit (when systemd-analyze is installed)', (t) => {
  const which = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' });
  if (which.status !== 0) return t.skip('systemd-analyze not installed');
  const dir = mkdtempSync(path.join(tmpdir(), 'gpa-unit-'));
  try {
    const f = path.join(dir, 'azure-proxy-agent.service');
    writeFileSync(
      f,
      renderUnit({ nodePath: process.execPath, gpaPath: bin, configPath: '/etc/azure/proxy-agent.json' }),
    );
    const r = spawnSync('systemd-analyze', ['verify', f], { encoding: 'utf8' });
    assert.doesNotMatch(r.stderr, /Unknown (key|lvalue)|Failed to parse/i, r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
