import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { describe, it } from 'node:test';
import { startUpstream, UPSTREAM_NODE_FLAGS } from '../../bench/macro/upstream.js';

function get(host: string, port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, headers: { Metadata: 'true' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('bench upstream', () => {
  it('runs the host emulator with its V8 flags (no idle-time full GCs) and serves the floor', async () => {
    assert.ok(UPSTREAM_NODE_FLAGS.includes('--no-memory-reducer'));
    const up = await startUpstream({ role: 'floor', imds: { host: '127.0.0.1', port: 0 } });
    try {
      const argv = readFileSync(`/proc/${up.pid}/cmdline`, 'utf8').split('\0');
      for (const flag of UPSTREAM_NODE_FLAGS) assert.ok(argv.includes(flag), `${flag} in ${argv.join(' ')}`);
      const status = await get(up.ready.imds.host, up.ready.imds.port, '/metadata/instance?api-version=2021-02-01');
      assert.equal(status, 200);
    } finally {
      await up.stop();
    }
  });
});
