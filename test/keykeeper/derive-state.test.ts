import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deriveState, parseStatus } from '../../lib/keykeeper/index.js';

const base = {
  authorizationScheme: 'Azure-HMAC-SHA256',
  keyDeliveryMethod: 'http',
  keyIncarnationId: 1,
  keyGuid: null,
};

function derive(doc: Record<string, unknown>) {
  const r = parseStatus(JSON.stringify({ ...base, ...doc }), 'application/json');
  if (!r.ok) throw new Error(r.message);
  return deriveState(r.status);
}

test('v1 states map to modes; the reported state is the lowercase v1 value', () => {
  const ws = derive({ version: '1.0', secureChannelState: 'Wireserver' });
  assert.deepEqual(ws.modes, { imds: 'audit', wireserver: 'enforce', hostga: 'enforce' });
  assert.equal(ws.secureChannelState, 'wireserver');
  const both = derive({ version: '1.0', secureChannelState: 'WIRESERVERANDIMDS' });
  assert.deepEqual(both.modes, { imds: 'enforce', wireserver: 'enforce', hostga: 'enforce' });
  assert.equal(both.secureChannelState, 'wireserverandimds');
  const off = derive({ version: '1.0', secureChannelState: 'Disabled' });
  assert.deepEqual(off.modes, { imds: 'disabled', wireserver: 'disabled', hostga: 'disabled' });
  assert.equal(off.secureChannelState, 'disabled');
  assert.deepEqual(derive({ version: '1.0', secureChannelState: 'audit' }).modes, {
    imds: 'audit',
    wireserver: 'audit',
    hostga: 'audit',
  });
});

test('v2 modes per item (case-insensitive; missing or unknown = disabled); HostGA follows WireServer', () => {
  const d = derive({
    version: '2.0',
    secureChannelEnabled: true,
    authorizationRules: {
      imds: { mode: 'AUDIT', id: 'i1' },
      wireserver: { mode: 'Enforce', id: 'w1' },
      hostga: { mode: 'disabled', id: 'h1' },
    },
  });
  assert.deepEqual(d.modes, { imds: 'audit', wireserver: 'enforce', hostga: 'enforce' });
  assert.equal(d.secureChannelState, 'WireServer Enforce -  IMDS Audit - HostGA Enforce');
  assert.deepEqual(d.ruleIds, { imds: 'i1', wireserver: 'w1', hostga: 'h1' });
  const sparse = derive({
    version: '2.0',
    secureChannelEnabled: true,
    authorizationRules: { imds: { mode: 'strict' } },
  });
  assert.deepEqual(sparse.modes, { imds: 'disabled', wireserver: 'disabled', hostga: 'disabled' });
  assert.equal(sparse.secureChannelState, 'WireServer Disabled -  IMDS Disabled - HostGA Disabled');
  const hostgaFromWs = derive({
    version: '2.0',
    secureChannelEnabled: true,
    authorizationRules: { wireserver: { mode: 'audit', id: 'w2' } },
  });
  assert.equal(hostgaFromWs.ruleIds.hostga, 'w2');
});

test('v2 master switch off: everything disabled, state "disabled"', () => {
  const d = derive({ version: '2.0', secureChannelEnabled: false, authorizationRules: { imds: { mode: 'enforce' } } });
  assert.deepEqual(d.modes, { imds: 'disabled', wireserver: 'disabled', hostga: 'disabled' });
  assert.equal(d.secureChannelState, 'disabled');
  assert.equal(d.enabled, false);
});
