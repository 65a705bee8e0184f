import assert from 'node:assert/strict';
import { execFileSync, type SpawnSyncReturns, spawnSync } from 'node:child_process';

/**
 * Runs a compiled runner script inside a fresh sealed network namespace: only `lo`, carrying the
 * metadata addresses, and no route out (asserted before anything runs). The namespace is deleted
 * afterwards even when the runner fails.
 */
export function runInSealedNetns(name: string, runnerJs: string, timeoutMs = 120_000): SpawnSyncReturns<string> {
  execFileSync('ip', ['netns', 'add', name]);
  try {
    const inNs = (...args: string[]) => execFileSync('ip', ['-n', name, ...args], { encoding: 'utf8' });
    inNs('link', 'set', 'lo', 'up');
    inNs('addr', 'add', '169.254.169.254/32', 'dev', 'lo');
    inNs('addr', 'add', '168.63.129.16/32', 'dev', 'lo');
    const links = inNs('-o', 'link').trim().split('\n');
    assert.equal(links.length, 1, `only lo: ${links.join('\n')}`);
    assert.equal(inNs('route').trim(), '');
    return spawnSync('nsenter', [`--net=/run/netns/${name}`, process.execPath, runnerJs], {
      encoding: 'utf8',
      timeout: timeoutMs,
      env: process.env,
    });
  } finally {
    spawnSync('ip', ['netns', 'delete', name]);
  }
}
