/**
 * Acceptance scenario 27 (readiness and collateral) in a network namespace this test creates with
 * nothing but `lo` carrying the metadata addresses (no route out); deleted in `finally`.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ebpfGate } from '../helpers/ebpf-env.js';
import { runInSealedNetns } from '../helpers/netns.js';
import { repoRoot } from './harness.js';

const gate = ebpfGate();

interface Runner {
  error?: string;
  agentLog?: string;
  withheld: { code: number | null; stdout: string };
  granted: { code: number | null; stdout: string };
  keyRequestsRefused: number;
  attached: string[];
  dns_root: unknown;
  dns_nobody: unknown;
  wireserverRoot: number;
  unsigned: number;
  stop: number | null;
}

describe('e2e: 27 readiness and collateral (sealed netns)', { skip: gate.skip }, () => {
  it('not ready while the key is withheld, ready once granted; DNS to 168.63.129.16:53 untouched', () => {
    gate.check();
    const r = runInSealedNetns(
      `gpa-e2e27-${process.pid}`,
      path.join(repoRoot, 'dist', 'test', 'e2e', 'readiness-runner.js'),
    );
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1) || '{}') as Runner;
    assert.equal(out.error, undefined, `${out.error}\n${out.agentLog ?? ''}\n${r.stderr}`);
    assert.equal(out.withheld.code, 1, out.withheld.stdout);
    assert.match(out.withheld.stdout, /not finished after 10 s[\s\S]*keyLatchStatus/);
    assert.ok(out.keyRequestsRefused >= 2, 'the host refused the key more than once while the agent waited');
    assert.equal(out.granted.code, 0, out.granted.stdout);
    assert.match(out.granted.stdout, /provisioning finished/);
    assert.deepEqual(out.attached, ['connect4', 'connect6', 'sock_ops']);
    for (const who of ['dns_root', 'dns_nobody'] as const) {
      assert.deepEqual(out[who], { udp: 'udp-answer', tcp: 'tcp-answer 168.63.129.16:53' }, who);
    }
    assert.equal(out.wireserverRoot, 200);
    assert.equal(out.unsigned, 0);
    assert.equal(out.stop, 0);
  });
});
