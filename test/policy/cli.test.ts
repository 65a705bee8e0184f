import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { item } from './fixtures.js';

const bin = new URL('../../../bin/gpa.mjs', import.meta.url).pathname;
const dir = mkdtempSync(path.join(tmpdir(), 'gpa-policy-cli-'));
const rules = path.join(dir, 'rules.json');
writeFileSync(
  rules,
  JSON.stringify(
    item({
      privileges: [{ name: 'inst', path: '/metadata/instance' }],
      identities: [{ name: 'c', userName: 'u1', exePath: '/usr/bin/curl' }],
      grants: { inst: ['c'] },
    }),
  ),
);
const gpa = (...args: string[]) => spawnSync(process.execPath, [bin, 'policy', ...args], { encoding: 'utf8' });
const sim = (url: string, ...extra: string[]) =>
  gpa(
    'simulate',
    '--rules',
    rules,
    '--method',
    'GET',
    '--url',
    url,
    '--user',
    'u1',
    '--uid',
    '1001',
    '--exe',
    '/usr/bin/curl',
    ...extra,
  );

describe('gpa policy', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));
  test('simulate: allow exits 0 and names the deciding rule', () => {
    const r = sim('http://169.254.169.254/metadata/instance?api-version=1');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^allow rule_allow privilege=inst role=role-inst identity=c$/m);
  });
  test('simulate: the raw target is kept, so traversal is judged on its canonical form', () => {
    const r = sim('http://169.254.169.254/metadata/instance/../identity/oauth2/token', '--explain');
    assert.equal(r.status, 1);
    assert.match(r.stdout, /canonical {2}\/metadata\/identity\/oauth2\/token/);
    assert.match(r.stdout, /deny default_deny/);
  });
  test('simulate --json carries the decision and the refusal code', () => {
    const r = sim('/metadata%2Fidentity', '--endpoint', 'imds', '--json');
    assert.equal(r.status, 1);
    const out = JSON.parse(r.stdout) as { decision: { code: string; forward: boolean }; canonical: null };
    assert.deepEqual([out.decision.code, out.decision.forward, out.canonical], ['encoded_slash', false, null]);
  });
  test('simulate --mode audit: a deny is audit-deny and still exits 1', () => {
    const r = sim('http://169.254.169.254/metadata/versions', '--mode', 'audit');
    assert.equal(r.status, 1);
    assert.match(r.stdout, /^audit-deny default_deny/m);
  });
  test('simulate --help and check --help print the usage and exit 0', () => {
    for (const sub of ['simulate', 'check']) {
      const r = gpa(sub, '--help');
      assert.equal(r.status, 0, sub);
      assert.match(r.stdout, /gpa policy simulate --rules FILE/);
    }
  });
  test('simulate: usage errors exit 2', () => {
    assert.equal(gpa('simulate', '--rules', rules, '--url', '/x').status, 2);
    assert.equal(
      gpa('simulate', '--rules', path.join(dir, 'missing.json'), '--url', '/x', '--endpoint', 'imds', '--uid', '0')
        .status,
      2,
    );
  });
  test('check: a valid file exits 0; every problem of a bad one is printed and exits 1', () => {
    assert.equal(gpa('check', rules).status, 0);
    const bad = path.join(dir, 'bad.json');
    writeFileSync(
      bad,
      JSON.stringify({ defaultAccess: 'deny', rules: { roles: [{ name: 'r', privileges: ['x'] }], extra: [] } }),
    );
    const r = gpa('check', bad);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /unknown_field imds\.rules\.extra/);
    assert.match(r.stderr, /dangling_reference imds\.rules\.roles\[0\]\.privileges\[0\]/);
  });
});
