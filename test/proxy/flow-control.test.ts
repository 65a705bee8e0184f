import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { describe, it } from 'node:test';
import { rawExchange, startProxy, startRawUpstream, startUpstream, statuses, type TestProxy } from './helpers.js';

// Backpressure, stalls and deadlines: a connection must neither hang, nor buffer without bound, nor
// outlive its deadlines, whatever the client or the upstream does.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (at most `ms`) until the proxy holds no client connection; returns how many it still holds. */
async function connectionsAfter(p: TestProxy, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  while (p.listener.connectionCount > 0 && Date.now() < deadline) await sleep(20);
  return p.listener.connectionCount;
}

describe('streamed uploads', () => {
  it('an upload whose first bytes wait for the upstream connect completes (no pooled connection idle)', async () => {
    const up = await startUpstream();
    // A fresh proxy: the upload's first body bytes arrive while its upstream connect is pending.
    const p = await startProxy(up.port, { endpoint: 'wireserver', uid: 0, timeouts: { headerMs: 2000 } });
    try {
      const body = Buffer.alloc(200 * 1024, 'z');
      const head = `PUT /vmAgentLog HTTP/1.1\r\nHost: h\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
      const s = net.connect(p.port, '127.0.0.1');
      s.on('error', () => {});
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      const closed = new Promise<void>((resolve) => {
        s.once('close', () => resolve());
        setTimeout(() => resolve(), 5000);
      });
      // The head and a few body bytes in one read (queued while the connect is pending: the agent
      // pauses this client), the rest once the agent's upstream connection exists.
      s.write(Buffer.concat([Buffer.from(head, 'latin1'), body.subarray(0, 1000)]));
      for (let i = 0; i < 100 && up.sockets() === 0; i++) await sleep(10);
      s.write(body.subarray(1000));
      await closed;
      s.destroy();
      assert.deepEqual(statuses(got), [200]);
      assert.equal(up.seen[0]?.body.length, body.length);
    } finally {
      await p.close();
      await up.close();
    }
  });

  it('a body that stalls after the response started drops the connection instead of answering 408 inside it', async () => {
    const up = await startRawUpstream((s) =>
      s.once('data', () => s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst-part-of-body|')),
    );
    const p = await startProxy(up.port, { endpoint: 'wireserver', uid: 0, timeouts: { headerMs: 300 } });
    try {
      const raw = await rawExchange(
        p.port,
        ['PUT /vmAgentLog HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n0123456789'],
        3000,
      );
      assert.deepEqual(statuses(raw), [200]);
      assert.ok(raw.endsWith('\r\n\r\nfirst-part-of-body|'), JSON.stringify(raw));
      assert.equal(await connectionsAfter(p, 1000), 0);
      assert.equal(p.audits.at(-1)?.code, 'header_timeout');
    } finally {
      await p.close();
      await up.close();
    }
  });
});

describe('response backpressure', () => {
  it('pauses a chunked upstream response for an HTTP/1.0 client that does not read', async () => {
    const total = 64 * 1024 * 1024;
    let sent = 0;
    const piece = Buffer.concat([Buffer.from('10000\r\n'), Buffer.alloc(0x10000, 'x'), Buffer.from('\r\n')]);
    const up = await startRawUpstream((s) => {
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
        const pump = () => {
          while (sent < total && !s.destroyed) {
            sent += 0x10000;
            if (!s.write(piece)) return void s.once('drain', pump);
          }
          if (!s.destroyed) s.write('0\r\n\r\n');
        };
        pump();
      });
    });
    const p = await startProxy(up.port);
    const c = net.connect(p.port, '127.0.0.1');
    c.on('error', () => {});
    try {
      c.pause(); // never reads
      c.write('GET /big HTTP/1.0\r\n\r\n');
      // Until the upstream stops getting rid of bytes (socket buffers full), at most 5 s.
      let last = -1;
      for (let i = 0; i < 50 && sent !== last; i++) {
        last = sent;
        await sleep(100);
      }
      assert.ok(sent < total / 2, `the upstream sent ${sent} bytes to a client reading nothing`);
    } finally {
      c.destroy();
      await p.close();
      await up.close();
    }
  });
});

describe('closing deadlines', () => {
  it('a half-closed connection is torn down even while the client keeps trickling bytes', async () => {
    const up = await startUpstream();
    const p = await startProxy(up.port, { timeouts: { headerMs: 300, keepAliveMs: 300 } });
    const s = net.connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true });
    s.on('error', () => {});
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    try {
      // Bytes after the `Connection: close` request: the agent half-closes rather than closes.
      s.write('GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n');
      let open = 1;
      for (let i = 0; i < 30 && open > 0; i++) {
        await sleep(100);
        if (!s.destroyed) s.write('X');
        open = p.listener.connectionCount;
      }
      assert.deepEqual(statuses(got), [200]);
      assert.equal(open, 0, 'the agent still holds the connection after 3 s');
    } finally {
      s.destroy();
      await p.close();
      await up.close();
    }
  });

  it('a connection that never sends a request is closed at the head deadline, not the idle one', async () => {
    const up = await startUpstream();
    const p = await startProxy(up.port, { timeouts: { headerMs: 200, keepAliveMs: 60_000 } });
    const s = net.connect(p.port, '127.0.0.1');
    s.on('error', () => {});
    try {
      const ended = await new Promise<boolean>((resolve) => {
        s.once('end', () => resolve(true));
        setTimeout(() => resolve(false), 3000);
      });
      assert.ok(ended, 'the agent still holds a silent connection after 3 s');
      assert.equal(await connectionsAfter(p, 1000), 0);
    } finally {
      s.destroy();
      await p.close();
      await up.close();
    }
  });

  it('a connection held until the first snapshot is served after the hold, even past the head deadline', async () => {
    const up = await startUpstream();
    const p = await startProxy(up.port, { timeouts: { headerMs: 300 } });
    p.listener.hold(1000); // as a worker does before its first snapshot
    try {
      const raw = await rawExchange(p.port, ['GET /held HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'], 3000);
      assert.deepEqual(statuses(raw), [200]);
    } finally {
      await p.close();
      await up.close();
    }
  });

  it('a buffered body trickled a byte at a time gets 408 at its total deadline, not never', async () => {
    const up = await startUpstream();
    // headerMs 200: each byte comes well within the idle deadline; the body's total is 3 × 200 ms.
    const p = await startProxy(up.port, { timeouts: { headerMs: 200 } });
    const s = net.connect(p.port, '127.0.0.1');
    s.on('error', () => {});
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    try {
      s.write('POST /m HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n');
      for (let i = 0; i < 40 && got === '' && !s.destroyed; i++) {
        await sleep(100);
        s.write('x');
      }
      assert.deepEqual(statuses(got), [408]);
      assert.match(got, /request body too slow/);
      assert.equal(up.seen.length, 0);
    } finally {
      s.destroy();
      await p.close();
      await up.close();
    }
  });

  it('a keep-alive connection closed for idleness forwards nothing more, even if the client keeps its side open', async () => {
    const up = await startUpstream();
    const p = await startProxy(up.port, { timeouts: { headerMs: 100, keepAliveMs: 200 } });
    const s = net.connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true });
    s.on('error', () => {});
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    const ended = new Promise<boolean>((resolve) => {
      s.once('end', () => resolve(true));
      setTimeout(() => resolve(false), 3000);
    });
    try {
      s.write('GET /a HTTP/1.1\r\nHost: h\r\n\r\n');
      assert.ok(await ended, 'the agent closed the idle connection');
      s.write('GET /b HTTP/1.1\r\nHost: h\r\n\r\n');
      await sleep(300);
      assert.deepEqual(
        up.seen.map((x) => x.url),
        ['/a'],
      );
      assert.deepEqual(statuses(got), [200]);
    } finally {
      s.destroy();
      await p.close();
      await up.close();
    }
  });
});
