import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { createBenchCgroup } from '../../bench/macro/cgroup.js';

const root = process.getuid?.() === 0;

describe('bench cgroup', { skip: !root && 'needs root (creates a cgroup)' }, () => {
  it('remove() kills a client still running in it (an interrupted round) and leaves no cgroup', async () => {
    const cg = createBenchCgroup();
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      writeFileSync(cg.procs, String(child.pid));
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_c, sig) => resolve(sig)));
      cg.remove();
      assert.equal(existsSync(cg.path), false, 'the cgroup is gone');
      assert.equal(await exited, 'SIGKILL');
    } finally {
      child.kill('SIGKILL');
      if (existsSync(cg.path)) cg.remove();
    }
  });

  it('remove() of an empty cgroup just removes it', () => {
    const cg = createBenchCgroup();
    cg.remove();
    assert.equal(existsSync(cg.path), false);
  });
});
