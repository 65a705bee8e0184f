import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type Emulator, startEmulator } from '../../lib/emulator/index.js';
import { deriveState, parseStatus } from '../../lib/keykeeper/index.js';

const root = mkdtempSync(path.join(tmpdir(), 'gpa-vmmodel-'));
const profiles = path.join(root, 'profiles');
const SUB = '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1/providers/Microsoft.Compute';
const IMDS_REF = `${SUB}/galleries/gallery1/inVMAccessControlProfiles/imdsProfile/versions/1.0.0`;
const IMDS_PROFILE = {
  properties: {
    applicableHostEndpoint: 'IMDS',
    mode: 'Enforce',
    defaultAccess: 'Deny',
    rules: {
      privileges: [{ name: 'instance', path: '/metadata/instance' }],
      roles: [{ name: 'reader', privileges: ['instance'] }],
      identities: [{ name: 'curl', exePath: '/usr/bin/curl' }],
      roleAssignments: [{ role: 'reader', identities: ['curl'] }],
    },
  },
};

let emu: Emulator;
before(async () => {
  mkdirSync(path.join(profiles, 'gallery1', 'imdsProfile'), { recursive: true });
  writeFileSync(path.join(profiles, 'gallery1', 'imdsProfile', '1.0.0.json'), JSON.stringify(IMDS_PROFILE));
  emu = await startEmulator({ control: null, profilesDir: profiles });
});
after(async () => {
  await emu.close();
  rmSync(root, { recursive: true, force: true });
});

function agentView() {
  const r = parseStatus(JSON.stringify(emu.state().status), 'application/json');
  if (!r.ok) throw new Error(r.message);
  return deriveState(r.status);
}

test('documented VM resource example: enabled, WireServer Enforce, IMDS Audit, HostGA follows', () => {
  emu.applyVmModel({
    name: 'vm1',
    properties: {
      securityProfile: {
        proxyAgentSettings: { enabled: true, wireServer: { mode: 'Enforce' }, imds: { mode: 'Audit' } },
      },
    },
  });
  const st = emu.state().status as { secureChannelEnabled: boolean; version: string };
  assert.equal(st.secureChannelEnabled, true);
  assert.equal(st.version, '2.0');
  assert.deepEqual(emu.state().hostModes, { imds: 'audit', wireserver: 'enforce', hostga: 'enforce' });
  assert.equal(agentView().secureChannelState, 'WireServer Enforce -  IMDS Audit - HostGA Enforce');
});

test('bare proxyAgentSettings and the scale-set shape are accepted', () => {
  emu.applyVmModel({ enabled: true, wireServer: { mode: 'Audit' }, imds: { mode: 'Audit' } });
  assert.deepEqual(emu.state().hostModes, { imds: 'audit', wireserver: 'audit', hostga: 'audit' });
  emu.applyVmModel({
    properties: { virtualMachineProfile: { securityProfile: { proxyAgentSettings: { enabled: false } } } },
  });
  assert.equal(agentView().secureChannelState, 'disabled');
});

test('a linked profile resolves to the rules document (mode, defaultAccess, rules)', () => {
  emu.applyVmModel({
    enabled: true,
    wireServer: { mode: 'Audit' },
    imds: { inVMAccessControlProfileReferenceId: IMDS_REF },
  });
  const d = agentView();
  assert.deepEqual(d.modes, { imds: 'enforce', wireserver: 'audit', hostga: 'audit' });
  assert.equal(d.ruleIds.imds, IMDS_REF);
  const item = d.rules.imds as { defaultAccess: string; rules: unknown };
  assert.equal(item.defaultAccess, 'deny');
  // The keeper parses strictly into null-prototype objects; compare the JSON shape.
  assert.deepEqual(JSON.parse(JSON.stringify(item.rules)), IMDS_PROFILE.properties.rules);
});

test('mode together with a reference ID, malformed IDs and missing profiles are rejected naming the field; nothing changes', () => {
  emu.applyVmModel({ enabled: true, wireServer: { mode: 'Audit' }, imds: { mode: 'Audit' } });
  const before = JSON.stringify(emu.state());
  const bad: [unknown, RegExp][] = [
    [
      { enabled: true, imds: { mode: 'Audit', inVMAccessControlProfileReferenceId: IMDS_REF } },
      /proxyAgentSettings\.imds: 'mode' and 'inVMAccessControlProfileReferenceId' cannot both be specified/,
    ],
    [
      { enabled: true, wireServer: { inVMAccessControlProfileReferenceId: '/subscriptions/x/resourceGroups/y' } },
      /proxyAgentSettings\.wireServer\.inVMAccessControlProfileReferenceId: .* is not a valid resource ID/,
    ],
    [
      { enabled: true, imds: { inVMAccessControlProfileReferenceId: IMDS_REF.replace('gallery1', '..') } },
      /imds\.inVMAccessControlProfileReferenceId: .* not a valid resource ID/,
    ],
    [
      {
        enabled: true,
        imds: { inVMAccessControlProfileReferenceId: IMDS_REF.replace('Microsoft.Compute', 'Microsoft.Storage') },
      },
      /not a valid resource ID/,
    ],
    [
      { enabled: true, imds: { inVMAccessControlProfileReferenceId: IMDS_REF.replace('1.0.0', '9.9.9') } },
      /imds\.inVMAccessControlProfileReferenceId: inVMAccessControlProfile imdsProfile version 9\.9\.9 not found/,
    ],
    [
      { enabled: true, wireServer: { inVMAccessControlProfileReferenceId: IMDS_REF } },
      /applies to IMDS, not wireServer/,
    ],
    [{ enabled: true, imds: { mode: 'Strict' } }, /proxyAgentSettings\.imds\.mode must be Disabled, Audit or Enforce/],
    [{ enabled: 'yes' }, /proxyAgentSettings\.enabled must be true or false/],
    [{ properties: {} }, /properties\.securityProfile\.proxyAgentSettings is missing/],
  ];
  for (const [doc, message] of bad) {
    assert.throws(() => emu.applyVmModel(doc), message);
    assert.equal(JSON.stringify(emu.state()), before);
  }
});

test('keyIncarnationId: strictly larger resets the key; equal or smaller is ignored with a note', () => {
  const model = (keyIncarnationId: number) => ({
    enabled: true,
    wireServer: { mode: 'Enforce' },
    imds: { mode: 'Enforce' },
    keyIncarnationId,
  });
  emu.resetKey();
  const start = emu.state();
  const inc = start.keyIncarnationId;
  const larger = emu.applyVmModel(model(inc + 5));
  assert.equal(larger.keyReset, true);
  const after1 = emu.state();
  assert.equal(after1.keyIncarnationId, inc + 5);
  assert.notEqual(after1.key?.guid, start.key?.guid);
  for (const v of [inc + 5, inc]) {
    const r = emu.applyVmModel(model(v));
    assert.equal(r.keyReset, false);
    assert.match(r.notes.join('\n'), new RegExp(`keyIncarnationId ${v} ignored`));
    assert.equal(emu.state().key?.guid, after1.key?.guid);
    assert.equal(emu.state().keyIncarnationId, inc + 5);
  }
  assert.ok(emu.notes().some((n) => n.includes(`keyIncarnationId ${inc} ignored`)));
});
