/**
 * The policy self-test runs in a piscina thread. With no file descriptor left (a local user holding
 * connections), that thread cannot start: the agent must report it and go on, never die of the
 * pool's unhandled 'error' event, and the self-test must work again once descriptors are free.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const child = new URL('./fixtures/selftest-without-fds.js', import.meta.url).pathname;

test('a self-test that cannot start a thread fails alone, and the next one runs', () => {
  // A small descriptor limit, so the child can take them all quickly.
  const r = spawnSync('prlimit', ['--nofile=256:256', process.execPath, child], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `the process died: ${r.stderr.slice(-600)}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { held: number; starved: string; after: string };
  assert.ok(out.held > 100, `held ${out.held} descriptors`);
  assert.equal(out.after, 'ok', 'the self-test runs again once descriptors are free');
});
