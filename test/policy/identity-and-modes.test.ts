import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { authorize, compilePolicy } from '../../lib/policy/index.js';
import { caller, imdsPolicy, item, modes, root } from './fixtures.js';

describe('scenario 18: name matching', () => {
  const { decide } = imdsPolicy(
    item({
      privileges: [
        { name: 'inst', path: '/metadata/instance' },
        { name: 'tok', path: '/metadata/identity' },
      ],
      identities: [
        { name: 'admins', groupName: 'vmadmins' },
        { name: 'alice', userName: 'alice' },
      ],
      grants: { inst: ['admins'], tok: ['alice'] },
    }),
  );
  const inGroup = caller({
    userName: 'bob',
    groups: [
      { gid: 1001, name: 'bob' },
      { gid: 2000, name: 'vmadmins' },
    ],
  });
  test('group-only identity matches a member', () =>
    assert.equal(decide('/metadata/instance', inGroup).code, 'rule_allow'));
  test('group-only identity does not match a non-member', () => {
    assert.equal(decide('/metadata/instance', caller({ userName: 'bob' })).code, 'no_identity_match');
  });
  test('group names are not case-folded', () => {
    const c = caller({ groups: [{ gid: 2000, name: 'VMAdmins' }] });
    assert.equal(decide('/metadata/instance', c).forward, false);
  });
  test('user name with a homoglyph (Cyrillic a) is denied', () => {
    assert.equal(decide('/metadata/identity', caller({ userName: '\u0430lice' })).code, 'no_identity_match');
  });
  test('user name differing in case is denied', () => {
    assert.equal(decide('/metadata/identity', caller({ userName: 'Alice' })).code, 'no_identity_match');
    assert.equal(decide('/metadata/identity', caller({ userName: 'alice' })).code, 'rule_allow');
  });
});

describe('identity selectors', () => {
  const { decide } = imdsPolicy(
    item({
      privileges: [{ name: 'inst', path: '/metadata/instance' }],
      identities: [
        { name: 'curl-by-u1', userName: 'u1', exePath: '/usr/bin/curl' },
        { name: 'python', processName: 'python3' },
      ],
      grants: { inst: ['curl-by-u1', 'python'] },
    }),
  );
  test('AND of selectors: both must match', () => {
    assert.equal(decide('/metadata/instance').identity, 'curl-by-u1');
    assert.equal(decide('/metadata/instance', caller({ exePath: '/tmp/curl' })).forward, false);
    assert.equal(decide('/metadata/instance', caller({ userName: 'u2' })).forward, false);
  });
  test('processName is the basename of the executable, not the forgeable comm', () => {
    assert.equal(
      decide('/metadata/instance', caller({ exePath: '/usr/bin/python3', processName: 'x' })).identity,
      'python',
    );
    assert.equal(
      decide('/metadata/instance', caller({ exePath: '/usr/bin/evil', processName: 'python3' })).forward,
      false,
    );
    assert.equal(
      decide('/metadata/instance', caller({ exePath: null, processName: 'python3', userName: null })).forward,
      false,
    );
  });
});

describe('modes, root gate and signature-exempt uploads', () => {
  const ws = item({
    defaultAccess: 'allow',
    privileges: [{ name: 'gs', path: '/machine' }],
    identities: [{ name: 'agent', exePath: '/usr/sbin/waagent' }],
    grants: { gs: ['agent'] },
  });
  const at = (m: 'disabled' | 'audit' | 'enforce') =>
    compilePolicy({ modes: modes({ wireserver: m }), rules: { wireserver: ws } }).snapshot;
  test('disabled: not intercepted, forwarded even for non-root', () => {
    const d = authorize(
      at('disabled'),
      { endpoint: 'wireserver', method: 'GET', rawTarget: '/machine/?comp=goalstate' },
      caller(),
    );
    assert.deepEqual([d.outcome, d.forward, d.code], ['allow', true, 'mode_disabled']);
  });
  for (const ep of ['wireserver', 'hostga'] as const) {
    for (const m of ['audit', 'enforce'] as const) {
      test(`${ep} ${m}: root is uid 0, not gid 0`, () => {
        const s = at(m);
        const req = { endpoint: ep, method: 'GET', rawTarget: '/health' };
        const d = authorize(s, req, caller({ uid: 1001, gid: 0 }));
        assert.deepEqual([d.forward, d.code, d.status], [false, 'root_required', 403]);
        assert.equal(authorize(s, req, root({ gid: 1001 })).code, 'default_allow');
      });
    }
  }
  test('audit: a rule deny becomes audit-deny and is forwarded', () => {
    const d = authorize(
      at('audit'),
      { endpoint: 'wireserver', method: 'GET', rawTarget: '/machine/?comp=goalstate' },
      root(),
    );
    assert.deepEqual([d.outcome, d.forward, d.code, d.privilege], ['audit-deny', true, 'no_identity_match', 'gs']);
  });
  test('enforce: the same deny is 403 and not forwarded', () => {
    const d = authorize(
      at('enforce'),
      { endpoint: 'wireserver', method: 'GET', rawTarget: '/machine/?comp=goalstate' },
      root(),
    );
    assert.deepEqual([d.outcome, d.forward, d.status], ['deny', false, 403]);
  });
  test('exempt uploads: root skips rules, non-root is still refused, case-insensitive whole target', () => {
    const s = at('enforce');
    const up = { endpoint: 'wireserver' as const, method: 'post', rawTarget: '/Machine/?comp=TelemetryData' };
    const d = authorize(s, up, root());
    assert.deepEqual([d.forward, d.code, d.signatureExempt], [true, 'signature_exempt_root', true]);
    assert.equal(authorize(s, up, caller()).code, 'root_required');
    const log = authorize(s, { endpoint: 'hostga', method: 'PUT', rawTarget: '/vmAgentLog' }, root());
    assert.equal(log.code, 'signature_exempt_root');
    const notWhole = authorize(s, { ...up, rawTarget: '/machine/?comp=telemetrydata&x=1' }, root());
    assert.deepEqual([notWhole.signatureExempt, notWhole.code], [false, 'no_identity_match']);
  });
  test('hostga uses wireserver rules when it has none, with its own mode', () => {
    const r = compilePolicy({ modes: modes({ wireserver: 'enforce', hostga: 'audit' }), rules: { wireserver: ws } });
    const d = authorize(r.snapshot, { endpoint: 'hostga', method: 'GET', rawTarget: '/machine' }, root());
    assert.deepEqual([d.outcome, d.code, d.ruleId, d.mode], ['audit-deny', 'no_identity_match', 'rules-1', 'audit']);
  });
  test('no item: IMDS open to everyone, WireServer root only', () => {
    const s = compilePolicy({ modes: modes(), rules: {} }).snapshot;
    assert.equal(
      authorize(s, { endpoint: 'imds', method: 'GET', rawTarget: '/metadata/instance' }, caller()).code,
      'default_allow',
    );
    assert.equal(
      authorize(s, { endpoint: 'wireserver', method: 'GET', rawTarget: '/' }, caller()).code,
      'root_required',
    );
    assert.equal(authorize(s, { endpoint: 'wireserver', method: 'GET', rawTarget: '/' }, root()).code, 'default_allow');
  });
  test('scenario 12: enforce + defaultAccess deny + no rules denies everyone, root too', () => {
    const s = compilePolicy({
      modes: modes(),
      rules: { imds: { defaultAccess: 'deny', mode: 'enforce', id: 'x', rules: null } },
    }).snapshot;
    for (const c of [caller(), root()]) {
      const d = authorize(s, { endpoint: 'imds', method: 'GET', rawTarget: '/metadata/instance' }, c);
      assert.deepEqual([d.forward, d.code], [false, 'default_deny']);
    }
  });
});
