import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import {
  closeSelfTestPool,
  compilePolicy,
  compilePolicyChecked,
  evilTwins,
  runSelfTest,
  selfTestSnapshot,
} from '../../lib/policy/index.js';
import { item, modes } from './fixtures.js';

const policy = item({
  privileges: [
    { name: 'inst', path: '/metadata/instance', queryParameters: { 'api-version': '2021-02-01' } },
    { name: 'tok', path: '/metadata/identity/oauth2/token' },
  ],
  identities: [{ name: 'u1', userName: 'u1' }],
  grants: { inst: ['u1'], tok: ['u1'] },
});

describe('evil-twin self-test', () => {
  after(() => closeSelfTestPool());

  test('twins are generated and none of them matches a correct policy', () => {
    assert.ok(evilTwins('/metadata/instance').includes('/metadata/instancex'));
    assert.deepEqual(evilTwins('/'), []);
    const { snapshot } = compilePolicy({ modes: modes(), rules: { imds: policy } });
    assert.deepEqual(selfTestSnapshot(snapshot), []);
  });

  test('a matcher that confuses a sibling is caught, with the reproducer in the message', () => {
    const { snapshot } = compilePolicy({ modes: modes(), rules: { imds: policy } });
    const rs = snapshot.endpoints.imds.remote!;
    // Simulate a matcher bug: the privilege also hangs under the sibling segment "instancex".
    const metadata = rs.root.children.get('metadata')!;
    const inst = metadata.children.get('instance')!;
    metadata.children.set('instancex', inst);
    const problems = selfTestSnapshot(snapshot);
    metadata.children.delete('instancex');
    assert.ok(problems.length > 0);
    assert.equal(problems[0]!.code, 'evil_twin');
    assert.match(problems[0]!.message, /"\/metadata\/instancex"/);
  });

  test('runs in a piscina worker and passes a good policy', async () => {
    const problems = await runSelfTest({ modes: modes(), rules: { imds: policy, wireserver: JSON.stringify(policy) } });
    assert.deepEqual(problems, []);
    const r = await compilePolicyChecked({ modes: modes(), rules: { imds: Buffer.from(JSON.stringify(policy)) } });
    assert.deepEqual(r.problems, []);
    assert.equal(r.snapshot.endpoints.imds.state, 'remote');
  });

  test('a self-test failure rejects the rule set like a broken document', () => {
    const twin = {
      severity: 'error' as const,
      code: 'evil_twin',
      endpoint: 'imds' as const,
      path: 'imds.privileges.inst',
      message: 'imds: privilege "inst" matched /metadata/instancex',
    };
    const r = compilePolicy({ modes: modes(), rules: { imds: policy }, extraProblems: [twin] });
    assert.equal(r.failClosed, true);
    assert.equal(r.snapshot.endpoints.imds.state, 'deny-all');
    assert.ok(r.problems.some((p) => p.message.includes('/metadata/instancex')));
  });
});
