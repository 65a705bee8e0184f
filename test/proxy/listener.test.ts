import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProxyListener } from '../../lib/proxy/index.js';
import { CLIENT_SOCKETS, rawExchange, startProxy, startUpstream, testSocketIo } from './helpers.js';

describe(`the agent port (client sockets: ${CLIENT_SOCKETS})`, () => {
  it('is its own: a second listener on it fails with EADDRINUSE instead of sharing it', async () => {
    const up = await startUpstream();
    const p = await startProxy(up.port);
    const second = new ProxyListener(p.listener.ctx, { io: testSocketIo() });
    try {
      await assert.rejects(second.listen({ host: '127.0.0.1', port: p.port }), /EADDRINUSE/);
      const got = await rawExchange(p.port, [
        'GET /metadata/instance HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      ]);
      assert.match(got, /^HTTP\/1\.1 200 /, 'the first listener still serves');
    } finally {
      await second.close(0);
      await p.close();
      await up.close();
    }
  });

  it('is shared by listeners that ask for SO_REUSEPORT (workers)', {
    skip: CLIENT_SOCKETS === 'node' && 'net.Server on Node 20 ignores reusePort',
  }, async () => {
    const up = await startUpstream();
    const p = await startProxy(up.port);
    const a = new ProxyListener(p.listener.ctx, { io: testSocketIo() });
    const b = new ProxyListener(p.listener.ctx, { io: testSocketIo() });
    try {
      const { port } = await a.listen({ host: '127.0.0.1', port: 0, reusePort: true });
      assert.equal((await b.listen({ host: '127.0.0.1', port, reusePort: true })).port, port);
      for (let i = 0; i < 6; i++) {
        const got = await rawExchange(port, [
          'GET /metadata/instance HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
        ]);
        assert.match(got, /^HTTP\/1\.1 200 /);
      }
    } finally {
      await a.close(100);
      await b.close(100);
      await p.close();
      await up.close();
    }
  });
});
