import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  type NativeClientSocket,
  type NativeIo,
  NativeUpstreamSocket,
  nativeIoFor,
  UpstreamPool,
} from '../../lib/proxy/index.js';
import { ownBytes } from '../../lib/proxy/native-io.js';
import type { UpstreamConn, UpstreamOwner } from '../../lib/proxy/upstream-pool.js';
import { clientSocketIo } from '../../lib/redirector/index.js';

const addon = clientSocketIo();
const skip = addon === null ? 'the addon has no client-socket I/O here (Linux builds only)' : false;
const here = path.dirname(fileURLToPath(import.meta.url));

/** A loopback listener served by `onConnection`; close() stops it and destroys what it accepted. */
function listen(onConnection: (s: NativeClientSocket) => void, host = '127.0.0.1') {
  const io: NativeIo = nativeIoFor(addon!);
  const fd = addon!.createListener(host, 0, 64, false);
  const accepted: NativeClientSocket[] = [];
  io.listen(fd, (s) => {
    accepted.push(s);
    onConnection(s);
  });
  const port = addon!.ioAddress(fd, false)![1];
  return {
    port,
    accepted,
    close: () => {
      io.unlisten(fd);
      for (const s of accepted) s.destroy();
    },
  };
}

/** Client sockets of the running test, destroyed after it whatever happened. */
const clients: net.Socket[] = [];

async function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  const c = net.connect(port, host);
  clients.push(c);
  await once(c, 'connect');
  return c;
}

/** Everything the peer sends until it closes. */
function readAll(c: net.Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  c.on('data', (d: Buffer) => parts.push(d));
  return new Promise((resolve) => c.once('close', () => resolve(Buffer.concat(parts))));
}

describe('native client sockets (addon I/O)', { skip }, () => {
  afterEach(() => {
    for (const c of clients.splice(0)) c.destroy();
  });

  it('reads, writes, knows both ends, and closes after what it queued is sent', async () => {
    const srv = listen((s) => {
      s.on('data', (chunk) => {
        s.write(Buffer.concat([Buffer.from(`${s.remoteAddress}:${s.remotePort}>${s.localPort}:`), chunk]));
        s.destroySoon();
      });
    });
    try {
      const c = await connect(srv.port);
      const clientPort = c.localPort;
      const got = readAll(c);
      c.write('hello');
      assert.equal((await got).toString(), `127.0.0.1:${clientPort}>${srv.port}:hello`);
    } finally {
      srv.close();
    }
  });

  it('knows both ends on a wildcard or IPv6 listener too (the local end is the connection’s)', async () => {
    // [listen on, connect to, the local address the server must see]
    const cases: [string, string, string][] = [
      ['0.0.0.0', '127.0.0.1', '127.0.0.1'],
      ['::1', '::1', '::1'],
      ['::', '::1', '::1'], // the addon's IPv6 listeners are IPv6-only
    ];
    for (const [host, to, local] of cases) {
      const srv = listen((s) => {
        s.on('data', () => {
          s.write(`${s.remoteAddress}:${s.remotePort}>${s.localAddress}:${s.localPort}`);
          s.destroySoon();
        });
      }, host);
      try {
        const c = await connect(srv.port, to);
        const client = `${c.localAddress}:${c.localPort}`;
        const got = readAll(c);
        c.write('x');
        assert.equal((await got).toString(), `${client}>${local}:${srv.port}`, `listening on ${host}`);
      } finally {
        srv.close();
      }
    }
  });

  it('asks for a pause above 16 KiB queued, drains to a slow reader, and loses nothing of a reused buffer', async () => {
    const total = 8 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let falses = 0;
    let drains = 0;
    const srv = listen((s) => {
      let sent = 0;
      assert.equal(s.copiesWrites, true);
      const pump = (): void => {
        while (sent < total) {
          // One buffer for every write, refilled each time (copiesWrites: what is queued is a copy).
          chunk.fill(0x61 + ((sent / chunk.length) % 26));
          sent += chunk.length;
          if (!s.write(chunk)) {
            falses++;
            return;
          }
        }
        s.destroySoon();
      };
      s.on('drain', () => {
        drains++;
        pump();
      });
      s.once('data', pump);
    });
    try {
      const c = await connect(srv.port);
      c.write('go');
      c.pause(); // nothing read for a while: the kernel buffers fill and the addon queues
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(srv.accepted[0]!.writableLength >= 16 * 1024, 'bytes are queued in the agent');
      const got = readAll(c);
      c.resume();
      const bytes = await got;
      assert.equal(bytes.length, total);
      for (let i = 0; i < total / chunk.length; i++) {
        const block = bytes.subarray(i * chunk.length, (i + 1) * chunk.length);
        assert.ok(
          block.every((b) => b === 0x61 + (i % 26)),
          `block ${i} is the bytes written then`,
        );
      }
      assert.ok(falses >= 1 && drains >= 1, `write() said false ${falses} times, drain came ${drains} times`);
    } finally {
      srv.close();
    }
  });

  it("closes on the peer's FIN once its queued bytes are out, and emits close once", async () => {
    let closes = 0;
    const closed = new Promise<void>((resolve) => {
      const srv = listen((s) => {
        s.on('data', () => s.write('ack'));
        s.on('close', () => {
          closes++;
          srv.close();
          resolve();
        });
      });
      void (async () => {
        const c = await connect(srv.port);
        const got = readAll(c);
        c.end('bye'); // data, then FIN
        assert.equal((await got).toString(), 'ack');
      })();
    });
    await closed;
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(closes, 1);
  });

  it('times out an idle socket once; activity postpones it', async () => {
    const events: string[] = [];
    const srv = listen((s) => {
      s.setTimeout(150);
      s.on('data', (d) => events.push(`data ${d}`));
      s.on('timeout', () => {
        events.push('timeout');
        s.destroy();
      });
    });
    try {
      const c = await connect(srv.port);
      const t0 = Date.now();
      const got = readAll(c);
      for (const w of ['a', 'b', 'c']) {
        await new Promise((r) => setTimeout(r, 80));
        c.write(w);
      }
      await got;
      const elapsed = Date.now() - t0;
      assert.deepEqual(events, ['data a', 'data b', 'data c', 'timeout']);
      assert.ok(elapsed >= 240 + 140, `closed after ${elapsed} ms: the writes every 80 ms kept it alive`);
    } finally {
      srv.close();
    }
  });

  it('drops only the connection whose handler throws; the thread and the listener go on', async () => {
    const srv = listen((s) => {
      s.on('data', (d) => {
        if (d.toString() === 'boom') throw new Error('handler bug');
        s.write('ok');
        s.destroySoon();
      });
    });
    try {
      const bad = await connect(srv.port);
      const badGot = readAll(bad);
      bad.write('boom');
      assert.equal((await badGot).length, 0);
      const good = await connect(srv.port);
      const goodGot = readAll(good);
      good.write('hi');
      assert.equal((await goodGot).toString(), 'ok');
    } finally {
      srv.close();
    }
  });

  it('accepts a connection at its handshake, before the client speaks, and reads a late request', async () => {
    // No TCP_DEFER_ACCEPT: the wake-up for a new connection starts at the handshake, so it overlaps
    // the client's connect-to-write. A silent connection is the agent's to time out (head deadline).
    let acceptedAt = 0;
    const srv = listen((s) => {
      acceptedAt = Date.now();
      s.on('data', (d) => {
        s.write(`got ${d}`);
        s.destroySoon();
      });
    });
    try {
      const c = await connect(srv.port);
      const connectedAt = Date.now();
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(acceptedAt > 0, 'a connection that has not spoken yet is accepted');
      assert.ok(acceptedAt - connectedAt < 250, `accepted ${acceptedAt - connectedAt} ms after the connect`);
      const got = readAll(c);
      c.write('late');
      assert.equal((await got).toString(), 'got late');
    } finally {
      srv.close();
    }
  });

  it('takes the waiting connections in batches of at most 32 a wake-up, and leaves none in the queue', async () => {
    // Loop turns, counted by a self-renewing setImmediate (one check phase per turn).
    let turn = 0;
    let ticking = true;
    const tick = () => {
      turn++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const turnOf: number[] = [];
    const got = new Set<string>();
    const srv = listen((s) => {
      turnOf.push(turn);
      s.on('data', (d) => got.add(d.toString()));
    });
    try {
      // 40 clients connect and speak while this thread's loop is blocked in spawnSync: they wait
      // in the accept queue (backlog 64), and the first wake-up finds them all there.
      const child = spawnSync(
        process.execPath,
        [
          '-e',
          `const net = require('node:net'); let n = 0;
           for (let i = 0; i < 40; i++) { const c = net.connect(${srv.port}, '127.0.0.1', () => c.write('hello ' + i, () => { if (++n === 40) setTimeout(() => process.exit(0), 50); })); }`,
        ],
        { timeout: 10_000 },
      );
      assert.equal(child.status, 0, String(child.stderr));
      const deadline = Date.now() + 5000;
      while (got.size < 40 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(got.size, 40, 'every waiting connection was accepted and read');
      const perTurn = new Map<number, number>();
      for (const t of turnOf) perTurn.set(t, (perTurn.get(t) ?? 0) + 1);
      const counts = [...perTurn.values()];
      assert.equal(counts[0], 32, `the first wake-up takes the queue up to the cap: ${counts}`);
      assert.ok(
        counts.every((n) => n <= 32),
        `no wake-up takes more than 32: ${counts}`,
      );
    } finally {
      ticking = false;
      srv.close();
    }
  });

  it("gives a closed socket's poll handle to the next socket with its fd number, and the next connection works", async () => {
    const srv = listen((s) => {
      s.on('data', (chunk) => {
        s.write(Buffer.concat([Buffer.from('echo:'), chunk]));
        s.destroySoon();
      });
    });
    try {
      const before = addon!.ioStats();
      const n = 30;
      for (let i = 0; i < n; i++) {
        const c = await connect(srv.port);
        const got = readAll(c);
        c.write(`request ${i}`);
        assert.equal((await got).toString(), `echo:request ${i}`);
      }
      const after = addon!.ioStats();
      const made = after.handlesCreated - before.handlesCreated;
      const reused = after.handlesReused - before.handlesReused;
      assert.equal(made + reused, n, 'one handle per accepted socket');
      // One after another, each connection gets the number the last one freed: only the first
      // few (before any handle was kept) need uv_poll_init.
      assert.ok(reused >= n - 3, `reused ${reused} of ${n}`);
      assert.equal(after.connections, before.connections);
    } finally {
      srv.close();
    }
  });

  it('two handles kept for one fd number never take that number from a net.Socket that has it now', async () => {
    // In one event: the client socket closes, an outbound socket gets its fd number and closes,
    // and a net.Socket gets the number. At the listener's next wake-up both kept handles are there
    // for it; closing one then would delete the net.Socket's fd from the loop's epoll set.
    let serverSide: net.Socket | null = null;
    const later = await netServer((s) => {
      serverSide = s;
    });
    const io = nativeIoFor(addon!);
    let n: net.Socket | null = null;
    let nConnected: Promise<unknown> | null = null;
    let fds: (number | undefined)[] = [];
    const srv = listen((s) => {
      s.once('data', () => {
        if (n !== null) return void s.destroy(); // the second client only wakes the listener
        const fd = s.fd;
        s.destroy();
        const u = io.connect('127.0.0.1', later.port);
        u.on('error', () => {});
        const uFd = u.fd;
        u.destroy();
        n = net.connect(later.port, '127.0.0.1');
        nConnected = once(n, 'connect');
        clients.push(n);
        fds = [fd, uFd];
      });
    });
    const within = <T>(p: Promise<T>, what: string) =>
      Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(what)), 2000))]);
    try {
      const c1 = await connect(srv.port);
      c1.write('first');
      await once(c1, 'close');
      assert.ok(n !== null && nConnected !== null);
      const socket = n as net.Socket;
      await within(nConnected, 'the net.Socket did not connect');
      fds.push((socket as unknown as { _handle?: { fd?: number } })._handle?.fd);
      assert.ok(fds[0] === fds[1] && fds[1] === fds[2], `one fd number for the three sockets: ${fds.join(', ')}`);
      const c2 = await connect(srv.port);
      c2.write('second');
      await once(c2, 'close');
      for (let i = 0; serverSide === null && i < 100; i++) await new Promise((r) => setTimeout(r, 5));
      const got = once(socket, 'data');
      (serverSide as net.Socket | null)!.write('late');
      const [d] = await within(got, 'the net.Socket no longer gets its data');
      assert.equal((d as Buffer).toString(), 'late');
    } finally {
      srv.close();
      later.close();
    }
  });

  it('stops accepting when unlistened: the port is released', async () => {
    const srv = listen(() => {});
    srv.close();
    const c = net.connect(srv.port, '127.0.0.1');
    const [err] = (await once(c, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNREFUSED');
  });

  for (const how of ['process.exit', 'terminate'] as const) {
    it(`a worker that ends (${how}) with connections open closes them; the process goes on`, async () => {
      const w = new Worker(path.join(here, 'fixtures', 'native-io-worker.js'), { execArgv: [] });
      try {
        const [{ port }] = (await once(w, 'message')) as [{ port: number }];
        const c = await connect(port);
        const echoed = once(c, 'data');
        c.write('ping');
        assert.equal(String((await echoed)[0]), 'ping');
        const got = readAll(c);
        const exited = once(w, 'exit');
        if (how === 'terminate') void w.terminate();
        else w.postMessage('exit');
        const [code] = (await exited) as [number];
        assert.equal(code, how === 'terminate' ? 1 : 0);
        await got; // the worker's teardown closed the accepted fd: the client sees the end
        const again = net.connect(port, '127.0.0.1');
        const [err] = (await once(again, 'error')) as [NodeJS.ErrnoException];
        assert.equal(err.code, 'ECONNREFUSED', 'the listening fd was closed too');
      } finally {
        await w.terminate();
      }
    });
  }
});

/** A plain net.Server on loopback: the far end of the addon's outbound sockets. */
async function netServer(onConnection: (s: net.Socket) => void) {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    onConnection(s);
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return {
    port: (srv.address() as net.AddressInfo).port,
    sockets,
    close: () => {
      for (const s of sockets) s.destroy();
      srv.close();
    },
  };
}

/** An owner that collects what the pool's connection reports. */
function collector() {
  const got: Buffer[] = [];
  const events: string[] = [];
  const owner: UpstreamOwner = {
    onUpstreamData: (c) => got.push(c),
    onUpstreamEnd: () => events.push('end'),
    onUpstreamError: (e) => events.push(`error:${e.message}`),
    onUpstreamTimeout: () => events.push('timeout'),
    onUpstreamDrain: () => events.push('drain'),
  };
  return { got, events, owner };
}

describe('read slabs (addon I/O)', { skip }, () => {
  it('small reads are views into one shared slab that is never overwritten; large ones get their own', async () => {
    const seen: Buffer[] = [];
    const srv = listen((s) => s.on('data', (d) => seen.push(d)));
    try {
      const a = await connect(srv.port);
      const b = await connect(srv.port);
      const wait = async (n: number) => {
        const deadline = Date.now() + 5000;
        while (seen.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
        assert.equal(seen.length, n);
      };
      a.write('first');
      await wait(1);
      b.write('second');
      await wait(2);
      const [first, second] = seen as [Buffer, Buffer];
      assert.equal(first.toString(), 'first');
      assert.equal(second.toString(), 'second');
      assert.equal(first.buffer, second.buffer, 'two connections, one slab');
      const kept = ownBytes(first.subarray(1));
      assert.notEqual(kept.buffer, first.buffer, 'bytes kept past their event leave the slab');
      assert.equal(kept.toString(), 'irst');
      assert.ok(first.buffer.byteLength >= 32 * 1024);
      // Enough further reads to fill several slabs: the first views keep their bytes.
      for (let i = 0; i < 60; i++) {
        a.write(Buffer.alloc(4000, 0x61 + (i % 26)));
        await wait(3 + i);
      }
      assert.equal(first.toString(), 'first');
      assert.equal(second.toString(), 'second');
      assert.notEqual(seen.at(-1)!.buffer, first.buffer, 'a full slab was replaced, not reused');
      const big = Buffer.alloc(40 * 1024, 0x7a);
      const before = seen.length;
      a.write(big);
      const deadline = Date.now() + 5000;
      while (Buffer.concat(seen.slice(before)).length < big.length && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 2));
      assert.deepEqual(Buffer.concat(seen.slice(before)), big);
      const largest = seen.slice(before).reduce((m, c) => (c.length > m.length ? c : m));
      if (largest.length > 16 * 1024)
        assert.equal(largest.buffer.byteLength, largest.length, 'a large read owns its buffer');
    } finally {
      srv.close();
    }
  });

  it('ownBytes keeps what is not a read slab as it is (Node’s own pool, any other buffer)', () => {
    const large = Buffer.alloc(64 * 1024);
    const view = large.subarray(100, 104);
    assert.equal(ownBytes(view), view, 'a view of some other large buffer');
    assert.equal(ownBytes(large), large);
    const small = Buffer.from('pooled'); // a slice of Node's pool (8 KiB on Node 20, 64 KiB on 24)
    assert.equal(ownBytes(small), small);
  });
});

describe('native upstream sockets (addon I/O, outbound)', { skip }, () => {
  it('connects, sends what was written while connecting and while corked in order, reads the answer, and reports the FIN', async () => {
    const srv = await netServer((s) => {
      const parts: Buffer[] = [];
      s.on('data', (d: Buffer) => {
        parts.push(d);
        const all = Buffer.concat(parts);
        if (all.includes('END')) s.end(Buffer.concat([Buffer.from('got:'), all]));
      });
    });
    try {
      const io = nativeIoFor(addon!);
      const s = io.connect('127.0.0.1', srv.port);
      assert.ok(s instanceof NativeUpstreamSocket);
      s.write('early ', 'latin1'); // before the connect completed: queued
      await once(s, 'connect');
      assert.equal(s.copiesWrites, true);
      s.cork();
      assert.equal(s.copiesWrites, false, 'corked parts are held as given');
      s.write('caf\u00e9 ', 'latin1'); // one byte per code point
      s.write(Buffer.from('corked '));
      s.uncork();
      assert.equal(s.copiesWrites, true);
      s.write(Buffer.from('END'));
      const data: Buffer[] = [];
      s.on('data', (d: Buffer) => data.push(d));
      const closed = once(s, 'close');
      await once(s, 'end');
      await closed;
      assert.deepEqual(Buffer.concat(data), Buffer.from('got:early caf\xe9 corked END', 'latin1'));
      assert.equal(s.destroyed, true, 'closed itself after the FIN');
    } finally {
      srv.close();
    }
  });

  it('delivers the bytes that came before a reset, then reports the reset', async () => {
    let serverDone!: () => void;
    const reset = new Promise<void>((r) => (serverDone = r));
    const srv = await netServer((s) => {
      s.once('data', () => {
        s.write('answer', () => {
          s.resetAndDestroy();
          serverDone();
        });
      });
    });
    try {
      const s = nativeIoFor(addon!).connect('127.0.0.1', srv.port);
      await once(s, 'connect');
      s.pause(); // the answer and the reset wait in the kernel: both are there at the next poll
      const data: Buffer[] = [];
      s.on('data', (d: Buffer) => data.push(d));
      s.on('error', () => {});
      const closed = new Promise((r) => s.once('close', r));
      s.write('ask');
      await reset;
      await new Promise((r) => setTimeout(r, 20));
      s.resume();
      await closed;
      assert.equal(Buffer.concat(data).toString(), 'answer', 'read before the reset closed the socket');
    } finally {
      srv.close();
    }
  });

  it('corked writes ask for a pause from 16 KiB held, and end() sends them before the FIN', async () => {
    const received: Buffer[] = [];
    let ended!: () => void;
    const gotEnd = new Promise<void>((r) => (ended = r));
    const srv = await netServer((s) => {
      s.on('data', (d: Buffer) => received.push(d));
      s.on('end', () => ended());
    });
    try {
      const s = nativeIoFor(addon!).connect('127.0.0.1', srv.port);
      await once(s, 'connect');
      s.cork();
      assert.equal(s.write(Buffer.alloc(10 * 1024, 1)), true);
      assert.equal(s.write(Buffer.alloc(10 * 1024, 2)), false, '20 KiB held: wait for drain');
      s.end();
      await gotEnd;
      const all = Buffer.concat(received);
      assert.equal(all.length, 20 * 1024);
      assert.equal(all[0], 1);
      assert.equal(all[all.length - 1], 2);
      s.destroy();
    } finally {
      srv.close();
    }
  });

  it('reports a refused connect as an error naming the address, then closes', async () => {
    const srv = await netServer(() => {});
    srv.close(); // the port is free again: the connect is refused
    const s = nativeIoFor(addon!).connect('127.0.0.1', srv.port);
    const closed = new Promise((r) => s.once('close', r)); // right after the error, as net.Socket does
    const [err] = (await once(s, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNREFUSED');
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${srv.port}`));
    await closed;
    assert.equal(s.destroyed, true);
  });

  it('takes numeric addresses only (the pool uses net.Socket for a name)', () => {
    assert.throws(() => nativeIoFor(addon!).connect('localhost', 80), /numeric IP address/);
  });

  it('the pool opens its connections through the addon, lends one again after release, and forgets one the host closed', async () => {
    let accepted = 0;
    const srv = await netServer((s) => {
      accepted++;
      s.on('data', () => s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'));
    });
    const pool = new UpstreamPool({ io: nativeIoFor(addon!) });
    try {
      const target = { host: '127.0.0.1', port: srv.port };
      const borrow = () =>
        new Promise<UpstreamConn>((resolve, reject) => {
          const c = collector();
          pool.acquire(target, c.owner, (err, conn) => (err ? reject(err) : resolve(Object.assign(conn!, { c }))));
        });
      const first = (await borrow()) as UpstreamConn & { c: ReturnType<typeof collector> };
      assert.ok(first.socket instanceof NativeUpstreamSocket, 'an addon socket, not a net.Socket');
      first.socket.write('GET / HTTP/1.1\r\n\r\n', 'latin1');
      while (first.c.got.length === 0) await new Promise((r) => setTimeout(r, 5));
      assert.match(Buffer.concat(first.c.got).toString(), /^HTTP\/1\.1 200 OK/);
      pool.release(first);
      const second = await borrow();
      assert.equal(second, first, 'the idle connection is lent again');
      assert.equal(accepted, 1);
      pool.release(second);
      for (const s of srv.sockets) s.end(); // the host closes its idle end
      const deadline = Date.now() + 2000;
      while (pool.idleCount() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.equal(pool.idleCount(), 0, 'the closed connection left the pool');
      assert.equal(first.socket.destroyed, true, 'and its fd was closed');
    } finally {
      pool.close();
      srv.close();
    }
  });

  it('the pool answers a refused connect with the error, not a connection', async () => {
    const srv = await netServer(() => {});
    srv.close();
    const pool = new UpstreamPool({ io: nativeIoFor(addon!) });
    const c = collector();
    const [err, conn] = await new Promise<[Error | null, UpstreamConn | null]>((resolve) =>
      pool.acquire({ host: '127.0.0.1', port: srv.port }, c.owner, (e, k) => resolve([e, k])),
    );
    assert.equal(conn, null);
    assert.equal((err as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    assert.equal(pool.idleCount(), 0);
  });
});
