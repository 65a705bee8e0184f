import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rawExchange, startProxy, startUpstream, statuses } from './helpers.js';

const GET = 'GET /metadata/instance HTTP/1.1\r\nHost: 169.254.169.254\r\nMetadata: true\r\nConnection: close\r\n\r\n';

// Right after a restart the worker has no snapshot yet; connections are held (accepted, attributed,
// not read) until the first snapshot arrives, so the client waits instead of getting 503.
describe('holding connections until the first snapshot', () => {
  it('serves a held request once released, not before', async () => {
    const up = await startUpstream();
    const p = await startProxy(up.port);
    try {
      p.listener.hold(10_000);
      assert.equal(p.listener.holding, true);
      let answered = false;
      const pending = rawExchange(p.port, [GET], 8000).then((raw) => {
        answered = true;
        return raw;
      });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(answered, false, 'a held connection must not be answered');
      assert.equal(up.seen.length, 0);
      assert.equal(p.listener.connectionCount, 1, 'the connection was accepted while held');
      p.listener.release();
      assert.deepEqual(statuses(await pending), [200]);
      assert.equal(up.seen.length, 1);
      assert.equal(p.audits.length, 1);
    } finally {
      await p.close();
      await up.close();
    }
  });

  it('stops holding after the time limit', async () => {
    const up = await startUpstream();
    const p = await startProxy(up.port);
    try {
      p.listener.hold(200);
      const raw = await rawExchange(p.port, [GET], 5000);
      assert.deepEqual(statuses(raw), [200]);
      assert.equal(p.listener.holding, false);
    } finally {
      await p.close();
      await up.close();
    }
  });
});
