import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { caller, imdsPolicy, item } from './fixtures.js';

const instanceForU1 = item({
  privileges: [{ name: 'instance', path: '/metadata/instance' }],
  identities: [{ name: 'u1', userName: 'u1' }],
  grants: { instance: ['u1'] },
});

describe('scenario 13: path scoping', () => {
  const { decide, problems } = imdsPolicy(instanceForU1);
  test('policy compiles cleanly', () => assert.deepEqual(problems, []));
  const rows: [string, boolean, string][] = [
    ['/metadata/instance?api-version=2021-02-01', true, 'rule_allow'],
    ['/metadata/instance/compute/vmId', true, 'rule_allow'],
    ['/metadata/identity/oauth2/token?resource=x', false, 'default_deny'],
    ['/metadata/instance-evil', false, 'default_deny'],
    ['/metadata/instancex', false, 'default_deny'],
    ['/metadata', false, 'default_deny'],
  ];
  for (const [target, allowed, code] of rows) {
    test(`${target} -> ${allowed ? 'allow' : '403'}`, () => {
      const d = decide(target);
      assert.equal(d.forward, allowed);
      assert.equal(d.code, code);
      if (!allowed) assert.equal(d.status, 403);
      else {
        assert.equal(d.privilege, 'instance');
        assert.equal(d.identity, 'u1');
        assert.equal(d.role, 'role-instance');
      }
    });
  }
  test('another user matching the privilege is denied with no_identity_match', () => {
    const d = decide('/metadata/instance', caller({ userName: 'u2', uid: 1002 }));
    assert.equal(d.forward, false);
    assert.equal(d.code, 'no_identity_match');
    assert.equal(d.privilege, 'instance');
  });
});

describe('scenario 14: encoding matrix never reaches the token path', () => {
  const token = [
    '/metadata%2Fidentity/oauth2/token',
    '/metadata%2fidentity/oauth2/token',
    '/metadata%252Fidentity/oauth2/token',
    '/metadata/instance%2F..%2Fidentity/oauth2/token',
    '/metadata/instance%3F/../../metadata/identity/oauth2/token',
    '/metadata/identity/oauth2/token%3Fapi-version=1',
    '/metadata/instance/./../identity/oauth2/token',
    '/metadata/instance/../identity/oauth2/token',
    '/metadata/instance/%2e%2e/identity/oauth2/token',
    '/metadata/instance/..%2fidentity/oauth2/token',
    '//metadata/identity/oauth2/token',
    '/metadata//identity/oauth2/token',
    '/metadata/instance;x=1/../identity/oauth2/token',
    '/metadata/identity;x=1/oauth2/token',
    '/METADATA/Identity/OAuth2/Token',
    '/metadata\\identity\\oauth2\\token',
    '/metadata/instance\\..\\identity/oauth2/token',
    '/metadata/instance%5c..%5cidentity/oauth2/token',
    '/metadata%C0%AFidentity/oauth2/token',
    '/metadata/instance/%C0%AE%C0%AE/identity/oauth2/token',
    '/metadata/instance%00/../identity/oauth2/token',
    '/metadata/instance\u0000/../identity/oauth2/token',
    '/metadata/instance/../../../metadata/identity/oauth2/token',
    '/metadata/instance%23/../identity/oauth2/token',
  ];
  for (const mode of ['enforce', 'audit'] as const) {
    const { decide } = imdsPolicy(instanceForU1, mode);
    for (const t of token) {
      test(`${mode}: ${JSON.stringify(t)} is 4xx`, () => {
        const d = decide(t);
        if (mode === 'enforce' || !d.canonicalPath) {
          assert.equal(d.forward, false);
          assert.ok(d.status! >= 400 && d.status! < 500);
        }
        // Whatever the mode, a forwarded request is never one that canonicalizes into instance.
        if (d.forward) assert.equal(d.outcome, 'audit-deny');
        assert.notEqual(d.code, 'rule_allow');
      });
    }
  }
  test('audit mode never forwards a canonicalization failure', () => {
    const { decide } = imdsPolicy(instanceForU1, 'audit');
    const d = decide('/metadata%2Fidentity/oauth2/token');
    assert.deepEqual([d.outcome, d.forward, d.code], ['deny', false, 'encoded_slash']);
  });
});

describe('scenario 15: query constraints', () => {
  const { decide } = imdsPolicy(
    item({
      privileges: [{ name: 'inst', path: '/metadata/instance', queryParameters: { 'api-version': '2021-02-01' } }],
      identities: [{ name: 'u1', userName: 'u1' }],
      grants: { inst: ['u1'] },
    }),
  );
  const rows: [string, string, boolean, string][] = [
    ['match', '/metadata/instance?api-version=2021-02-01', true, 'rule_allow'],
    ['missing', '/metadata/instance', false, 'default_deny'],
    ['wrong', '/metadata/instance?api-version=2020-01-01', false, 'default_deny'],
    ['extra param', '/metadata/instance?format=json&api-version=2021-02-01', true, 'rule_allow'],
    [
      'duplicate conflicting',
      '/metadata/instance?api-version=2021-02-01&api-version=2017-01-01',
      false,
      'query_conflict',
    ],
    ['duplicate identical', '/metadata/instance?api-version=2021-02-01&api-version=2021-02-01', true, 'rule_allow'],
    ['key case', '/metadata/instance?API-Version=2021-02-01', true, 'rule_allow'],
    ['encoded value decoded once', '/metadata/instance?api-version=2021%2D02%2D01', true, 'rule_allow'],
    ['double-encoded value', '/metadata/instance?api-version=2021%252D02-01', false, 'default_deny'],
    ['value case differs', '/metadata/instance?api-version=2021-02-01X', false, 'default_deny'],
  ];
  for (const [name, target, allowed, code] of rows) {
    test(`${name} -> ${allowed ? 200 : 403}`, () => {
      const d = decide(target);
      assert.equal(d.forward, allowed);
      assert.equal(d.code, code);
    });
  }
  test('a conflicting duplicate fails closed even when defaultAccess is allow', () => {
    const p = imdsPolicy(
      item({
        defaultAccess: 'allow',
        privileges: [{ name: 'inst', path: '/metadata/instance', queryParameters: { 'api-version': '1' } }],
        identities: [{ name: 'u1', userName: 'u1' }],
        grants: { inst: ['u1'] },
      }),
    );
    assert.equal(p.decide('/metadata/instance?api-version=1&api-version=2').code, 'query_conflict');
    assert.equal(p.decide('/metadata/instance?api-version=2').code, 'default_allow');
  });
});
