import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  authorize,
  type CallerClaims,
  compilePolicy,
  type PolicySnapshot,
  parseStrictJson,
} from '../../lib/policy/index.js';
import { caller, item, modes, root } from './fixtures.js';

const good = item({
  id: 'rules-7',
  defaultAccess: 'deny',
  privileges: [{ name: 'inst', path: '/metadata/instance' }],
  identities: [{ name: 'u1', userName: 'u1' }],
  grants: { inst: ['u1'] },
});
const goodText = JSON.stringify(good);
const big = JSON.stringify({ ...good, pad: 'x'.repeat(20 * 1024 * 1024) });

const hostile: [string, unknown, string][] = [
  ['invalid JSON', '{"defaultAccess": "allow", ', 'invalid_json'],
  ['BOM', `\uFEFF${goodText}`, 'bom'],
  [
    'duplicate keys',
    goodText.replace('"defaultAccess":"deny"', '"defaultAccess":"deny","defaultAccess":"allow"'),
    'duplicate_key',
  ],
  [
    'dangling role reference',
    { ...good, rules: { ...good.rules, roleAssignments: [{ role: 'nope', identities: ['u1'] }] } },
    'dangling_reference',
  ],
  [
    'dangling identity reference',
    { ...good, rules: { ...good.rules, roleAssignments: [{ role: 'role-inst', identities: ['ghost'] }] } },
    'dangling_reference',
  ],
  [
    'dangling privilege reference',
    { ...good, rules: { ...good.rules, roles: [{ name: 'role-inst', privileges: ['ghost'] }] } },
    'dangling_reference',
  ],
  ['20 MB document', big, 'too_large'],
  ['unknown item field', { ...good, allowAll: true }, 'unknown_field'],
  [
    'unknown identity field',
    { ...good, rules: { ...good.rules, identities: [{ name: 'u1', userName: 'u1', uid: 0 }] } },
    'unknown_field',
  ],
  ['empty identity', { ...good, rules: { ...good.rules, identities: [{ name: 'u1' }] } }, 'empty_identity'],
  ['wrong types', { ...good, defaultAccess: true }, 'wrong_type'],
  ['bad defaultAccess', { ...good, defaultAccess: 'maybe' }, 'invalid_value'],
  ['missing defaultAccess', { mode: 'enforce', id: 'rules-7', rules: good.rules }, 'missing_field'],
  [
    'dot segments in a rule path',
    { ...good, rules: { ...good.rules, privileges: [{ name: 'inst', path: '/metadata/x/../instance' }] } },
    'noncanonical_path',
  ],
  [
    'encoded slash in a rule path',
    { ...good, rules: { ...good.rules, privileges: [{ name: 'inst', path: '/metadata%2Finstance' }] } },
    'noncanonical_path',
  ],
  [
    'duplicate privilege names',
    { ...good, rules: { ...good.rules, privileges: [good.rules.privileges[0], { name: 'inst', path: '/' }] } },
    'duplicate_name',
  ],
  ['item is an array', [good], 'wrong_type'],
  ['deep nesting', `${'['.repeat(100)}${']'.repeat(100)}`, 'too_large'],
];

const everyone: CallerClaims[] = [caller(), root(), caller({ userName: 'u2', uid: 1002 })];
const targets = ['/metadata/instance', '/metadata/identity/oauth2/token', '/'];

function assertDeniesAll(s: PolicySnapshot) {
  for (const c of everyone)
    for (const t of targets) {
      const d = authorize(s, { endpoint: 'imds', method: 'GET', rawTarget: t }, c);
      assert.equal(d.forward, false, `${t} for ${c.userName} forwarded`);
    }
}

describe('scenario 20: hostile policy', () => {
  for (const [name, raw, code] of hostile) {
    test(`${name}: fails closed with ${code} and the place named`, () => {
      const r = compilePolicy({ modes: modes(), rules: { imds: raw } });
      assert.equal(r.failClosed, true);
      assert.equal(r.keptPrevious, false);
      assert.ok(
        r.problems.some((p) => p.code === code && p.severity === 'error'),
        JSON.stringify(r.problems).slice(0, 500),
      );
      assert.ok(r.problems.some((p) => p.code === 'fail_closed'));
      assert.equal(r.snapshot.endpoints.imds.state, 'deny-all');
      assertDeniesAll(r.snapshot);
      const d = authorize(r.snapshot, { endpoint: 'imds', method: 'GET', rawTarget: '/' }, caller());
      assert.equal(d.code, 'policy_fail_closed');
    });
    test(`${name}: keeps the last good policy when the rule id is unchanged`, () => {
      const prev = compilePolicy({ modes: modes(), rules: { imds: good } });
      const r = compilePolicy({
        modes: modes(),
        rules: { imds: raw },
        ruleIds: { imds: 'rules-7' },
        previous: prev.snapshot,
      });
      assert.equal(r.keptPrevious, true);
      assert.equal(r.failClosed, false);
      assert.equal(r.snapshot.endpoints.imds.state, 'previous');
      assert.ok(r.snapshot.version > prev.snapshot.version);
      const d = authorize(r.snapshot, { endpoint: 'imds', method: 'GET', rawTarget: '/metadata/instance' }, caller());
      assert.equal(d.code, 'rule_allow');
      assert.equal(
        authorize(r.snapshot, { endpoint: 'imds', method: 'GET', rawTarget: '/x' }, caller()).forward,
        false,
      );
    });
  }
  test('a broken policy under a new rule id fails closed even with a good previous one', () => {
    const prev = compilePolicy({ modes: modes(), rules: { imds: good } });
    const r = compilePolicy({
      modes: modes(),
      rules: { imds: '{' },
      ruleIds: { imds: 'rules-8' },
      previous: prev.snapshot,
    });
    assert.deepEqual([r.failClosed, r.keptPrevious], [true, false]);
    assertDeniesAll(r.snapshot);
  });
  test('the good text itself compiles without problems (the table above is not vacuous)', () => {
    const r = compilePolicy({ modes: modes(), rules: { imds: goodText } });
    assert.deepEqual(r.problems, []);
    assert.equal(r.failClosed, false);
  });
  test('strict parser: __proto__ is an ordinary key, numbers and escapes parse', () => {
    const r = parseStrictJson('{"__proto__": {"x": 1}, "a": [1.5e3, -0, "\\u00e9\\n"]}');
    assert.ok(r.ok);
    const v = r.value as Record<string, unknown>;
    assert.deepEqual(Object.keys(v), ['__proto__', 'a']);
    assert.deepEqual(v['a'], [1500, -0, 'é\n']);
    assert.equal(parseStrictJson('{"a":1,"a":1}').ok, false);
    assert.equal(parseStrictJson('[1,]').ok, false);
    assert.equal(parseStrictJson('01').ok, false);
  });
});

describe('local rule files only tighten', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gpa-policy-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const localId = Buffer.from(JSON.stringify({ id: 'r9', useLocalFileRules: true })).toString('base64');
  const remote = item({ id: localId, defaultAccess: 'allow' });
  const local = item({
    defaultAccess: 'deny',
    privileges: [
      { name: 'inst', path: '/metadata/instance' },
      { name: 'tok', path: '/metadata/identity' },
    ],
    identities: [{ name: 'u1', userName: 'u1' }],
    grants: { inst: ['u1'], tok: ['u1'] },
  });
  const compile = () => compilePolicy({ modes: modes(), rules: { imds: remote }, localRulesDir: dir });
  const d = (s: PolicySnapshot, t: string, c = caller()) =>
    authorize(s, { endpoint: 'imds', method: 'GET', rawTarget: t }, c);

  test('descriptor decoding: only base64 JSON with useLocalFileRules true counts', () => {
    writeFileSync(path.join(dir, 'IMDS_Rules.json'), JSON.stringify(local));
    const opaque = compilePolicy({
      modes: modes(),
      rules: { imds: { ...remote, id: 'plain-id' } },
      localRulesDir: dir,
    });
    assert.equal(opaque.snapshot.endpoints.imds.local, null);
    const str = Buffer.from('{"useLocalFileRules":"true"}').toString('base64');
    assert.equal(
      compilePolicy({ modes: modes(), rules: { imds: { ...remote, id: str } }, localRulesDir: dir }).snapshot.endpoints
        .imds.local,
      null,
    );
  });
  test('a request must be allowed by both remote and local', () => {
    writeFileSync(path.join(dir, 'IMDS_Rules.json'), JSON.stringify(local));
    const r = compile();
    assert.deepEqual(r.problems, []);
    assert.equal(d(r.snapshot, '/metadata/instance').code, 'rule_allow');
    assert.equal(d(r.snapshot, '/metadata/versions').code, 'local_rules_deny');
    assert.equal(d(r.snapshot, '/metadata/instance', caller({ userName: 'u2' })).code, 'local_rules_deny');
  });
  test('a local file cannot loosen a remote deny', () => {
    writeFileSync(path.join(dir, 'IMDS_Rules.json'), JSON.stringify({ ...local, defaultAccess: 'allow' }));
    const r = compilePolicy({
      modes: modes(),
      rules: { imds: { ...remote, defaultAccess: 'deny' } },
      localRulesDir: dir,
    });
    assert.equal(d(r.snapshot, '/metadata/versions').code, 'default_deny');
  });
  for (const [name, text] of [
    ['broken JSON', '{"defaultAccess":'],
    ['duplicate key', '{"defaultAccess":"deny","defaultAccess":"allow","rules":null}'],
    ['unknown field', '{"defaultAccess":"allow","extra":1}'],
  ]) {
    test(`a local file with ${name} fails closed (deny-all under the remote mode)`, () => {
      writeFileSync(path.join(dir, 'IMDS_Rules.json'), text!);
      const r = compile();
      assert.equal(r.failClosed, true);
      assertDeniesAll(r.snapshot);
    });
  }
  test('a missing local file fails closed; so does an unconfigured folder', () => {
    rmSync(path.join(dir, 'IMDS_Rules.json'), { force: true });
    const r = compile();
    assert.ok(r.problems.some((p) => p.code === 'local_rules_unavailable'));
    assertDeniesAll(r.snapshot);
    const noDir = compilePolicy({ modes: modes(), rules: { imds: remote } });
    assert.equal(noDir.failClosed, true);
  });
  test('fail closed in audit mode means audit-deny (the remote mode decides)', () => {
    rmSync(path.join(dir, 'IMDS_Rules.json'), { force: true });
    const r = compilePolicy({ modes: modes({ imds: 'audit' }), rules: { imds: remote }, localRulesDir: dir });
    const x = d(r.snapshot, '/metadata/instance');
    assert.deepEqual([x.outcome, x.code], ['audit-deny', 'policy_fail_closed']);
  });
});
