/**
 * The fabric addresses themselves (169.254.169.254:80, 168.63.129.16:80 and :32526), exercised only
 * inside a network namespace this test creates with nothing but `lo` (no route out): emulator,
 * agent, redirect and callers all live in it. The namespace is deleted in `finally`.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ebpfGate } from '../helpers/ebpf-env.js';
import { runInSealedNetns } from '../helpers/netns.js';
import { repoRoot } from './harness.js';

const gate = ebpfGate();

describe('e2e: sealed network namespace on the real metadata addresses', { skip: gate.skip }, () => {
  it('2, 5 and HostGAPlugin: intercepted, signed, root-gated; nothing unsigned reaches the host', () => {
    gate.check();
    const r = runInSealedNetns(`gpa-e2e-${process.pid}`, path.join(repoRoot, 'dist', 'test', 'e2e', 'netns-runner.js'));
    const line = r.stdout.trim().split('\n').at(-1) ?? '{}';
    const out = JSON.parse(line) as Record<string, unknown>;
    assert.equal(out.error, undefined, `${out.error}\n${out.agentLog ?? ''}\n${r.stderr}`);
    assert.deepEqual(out.attached, ['connect4', 'connect6', 'sock_ops']);
    assert.equal(out.imdsUser, 200);
    assert.equal(out.wireserverUser, 403);
    assert.equal(out.wireserverRoot, 200);
    assert.equal(out.hostgaRoot, 200);
    assert.equal(out.unsigned, 0);
    const journal = out.journal as { endpoint: string; signature: string; claims: unknown }[];
    assert.deepEqual(
      journal.map((e) => [e.endpoint, e.signature]),
      [
        ['imds', 'valid'],
        ['wireserver', 'valid'],
        ['hostga', 'valid'],
      ],
    );
    assert.deepEqual(journal[0]!.claims, { isRoot: 'false' });
    assert.equal(out.stop, 0);
  });
});
