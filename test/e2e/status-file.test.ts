/**
 * status.json written by `gpa run` against the emulator: exactly the fields of host-protocol.md
 * section 6, UNKNOWN/not ready while the host withholds the key, SUCCESS with every module RUNNING
 * once the key is latched, and the module messages saying what runs where.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { StatusDocument } from '../../lib/status/index.js';
import { ebpfGate } from '../helpers/ebpf-env.js';
import { type Stack, startStack } from './harness.js';

const gate = ebpfGate();
const keys = (o: object) => Object.keys(o).sort();

async function statusWhen(file: string, want: (d: StatusDocument) => boolean, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      last = readFileSync(file, 'utf8');
      const d = JSON.parse(last) as StatusDocument;
      if (want(d)) return d;
    } catch {
      // not written yet
    }
    if (Date.now() > deadline) throw new Error(`status.json never reached the expected state:\n${last}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('e2e: status.json from gpa run', { skip: gate.skip }, () => {
  let s: Stack;
  let faultId = 0;
  before(async () => {
    gate.check();
    s = await startStack({
      settings: { enabled: true, modes: { imds: 'enforce', wireserver: 'audit' } },
      beforeAgent: (e) => {
        faultId = e.setFault({
          endpoint: 'wireserver',
          path: '/secure-channel/key',
          method: 'POST',
          kind: 'status',
          status: 503,
        });
      },
    });
  });
  after(async () => {
    await s?.cleanup();
  });

  it('is not SUCCESS while the key is withheld, then SUCCESS with the section 6 fields', async () => {
    const file = path.join(s.logFolder, 'status.json');
    const early = await statusWhen(file, (d) => d.proxyAgentStatus.ebpfProgramStatus.status === 'RUNNING');
    assert.notEqual(early.proxyAgentStatus.status, 'SUCCESS');
    assert.notEqual(early.proxyAgentStatus.keyLatchStatus.status, 'RUNNING');
    assert.equal(early.proxyAgentStatus.keyLatchStatus.states.keyGuid, '');
    s.emulator.clearFaults(faultId);
    const d = await statusWhen(file, (x) => x.proxyAgentStatus.status === 'SUCCESS');
    assert.deepEqual(keys(d), ['failedAuthenticateSummary', 'proxyAgentStatus', 'proxyConnectionSummary', 'timestamp']);
    assert.deepEqual(keys(d.proxyAgentStatus), [
      'ebpfProgramStatus',
      'keyLatchStatus',
      'proxyConnectionsCount',
      'proxyListenerStatus',
      'status',
      'telemetryLoggerStatus',
      'version',
    ]);
    const p = d.proxyAgentStatus;
    assert.deepEqual(keys(p.keyLatchStatus.states), [
      'hostGARuleId',
      'imdsRuleId',
      'keyGuid',
      'keyIncarnationId',
      'secureChannelState',
      'wireServerRuleId',
    ]);
    const hostKey = s.emulator.state().key;
    assert.equal(p.keyLatchStatus.status, 'RUNNING');
    assert.ok(hostKey, 'the emulator latched a key');
    assert.equal(p.keyLatchStatus.states.keyGuid.toLowerCase(), hostKey.guid.toLowerCase());
    assert.equal(p.keyLatchStatus.states.keyIncarnationId, String(hostKey.incarnationId));
    assert.match(p.keyLatchStatus.states.secureChannelState, /enforce/i);
    assert.equal(p.ebpfProgramStatus.status, 'RUNNING');
    assert.ok(p.ebpfProgramStatus.message.includes(s.cgroup.path), p.ebpfProgramStatus.message);
    assert.equal(p.proxyListenerStatus.status, 'RUNNING');
    assert.match(p.proxyListenerStatus.message, new RegExp(`127\\.0\\.0\\.1:${s.agentPort}\\b`));
    assert.equal(p.telemetryLoggerStatus.status, 'RUNNING');
    assert.ok(Number.isFinite(Date.parse(d.timestamp)));
    assert.ok(Array.isArray(d.proxyConnectionSummary) && Array.isArray(d.failedAuthenticateSummary));
  });

  it('counts handled requests and summarises them at shutdown', async () => {
    await s.waitForLog(/redirecting imds/);
    const r = await s.curl(`${s.imds}/metadata/instance?api-version=2021-02-01`);
    assert.equal(r.status, 200);
    assert.equal((await s.stop()).code, 0);
    const d = JSON.parse(readFileSync(path.join(s.logFolder, 'status.json'), 'utf8')) as StatusDocument;
    assert.ok(d.proxyAgentStatus.proxyConnectionsCount >= 1, JSON.stringify(d.proxyAgentStatus));
    assert.ok(
      d.proxyConnectionSummary.some((e) => String(e.responseStatus).startsWith('200')),
      JSON.stringify(d.proxyConnectionSummary),
    );
    assert.equal(d.proxyAgentStatus.proxyListenerStatus.status, 'STOPPED');
  });
});
