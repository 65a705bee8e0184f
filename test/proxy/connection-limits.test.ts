import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import {
  ConnectionCounter,
  defaultConnectionLimits,
  openFilesLimit,
  perWorker,
  UNATTRIBUTED_UID,
} from '../../lib/proxy/index.js';
import { rawExchange, startProxy, startUpstream, statuses } from './helpers.js';

// One local user holding connections open must not take the agent's descriptors from everyone
// else: each non-root uid has its share, non-root callers together three quarters, root the rest.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ConnectionCounter', () => {
  it('a uid stops at its share, non-root callers at three quarters of the total, root at the total', () => {
    const c = new ConnectionCounter({ total: 16, perUser: 5 });
    for (let i = 0; i < 5; i++) assert.ok(c.take(1000));
    assert.equal(c.take(1000), false, 'over its share');
    for (let i = 0; i < 5; i++) assert.ok(c.take(1001));
    for (let i = 0; i < 2; i++) assert.ok(c.take(UNATTRIBUTED_UID));
    assert.equal(c.take(1002), false, 'non-root callers hold 12 of 16');
    for (let i = 0; i < 4; i++) assert.ok(c.take(0), 'root still finds room');
    assert.equal(c.take(0), false, 'the total holds for root too');
    c.release(1000);
    assert.equal(c.take(1002), true, 'a place given back can be taken');
    c.release(4242); // never taken: no effect
    assert.equal(c.open, 16);
  });

  it('defaults follow the open-files limit', () => {
    const limits = (t: string) =>
      openFilesLimit(() => `Limit Soft Limit Hard Limit Units\nMax open files ${t} files\n`);
    assert.equal(limits('65536            524288'), 65536);
    assert.equal(limits('unlimited        unlimited'), Number.MAX_SAFE_INTEGER);
    assert.equal(
      openFilesLimit(() => null),
      null,
    );
    assert.deepEqual(defaultConnectionLimits(65536), { total: 16384, perUser: 2048 });
    assert.deepEqual(defaultConnectionLimits(1024), { total: 256, perUser: 64 });
    assert.deepEqual(defaultConnectionLimits(null), { total: 4096, perUser: 512 });
    assert.deepEqual(perWorker({ total: 16384, perUser: 2048 }, 4), { total: 4096, perUser: 512 });
    // Never above what the operator set (rounded up to one per worker at most).
    assert.deepEqual(perWorker({ total: 40, perUser: 2 }, 4), { total: 10, perUser: 1 });
  });
});

describe('connection limits in the listener', () => {
  it("unattributed connections filling their share do not keep out root's own direct queries", async () => {
    const up = await startUpstream();
    // Direct connections (no kernel record): whose they are, the peer lookup says (read at each call).
    const opts = { attributed: false, peerUid: 65534 as number | null, limits: { total: 16, perUser: 2 } };
    const p = await startProxy(up.port, opts);
    const held: net.Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const s = net.connect(p.port, '127.0.0.1');
        s.on('error', () => {});
        held.push(s);
        s.write('GET /provision HTTP/1.1\r\nHost: h\r\nMetadata: true\r\n\r\n');
      }
      for (let i = 0; i < 100 && p.listener.connectionCount < 2; i++) await sleep(10);
      const other = await rawExchange(p.port, ['GET /provision HTTP/1.1\r\nHost: h\r\nMetadata: true\r\n\r\n'], 1000);
      assert.deepEqual(statuses(other), [503], 'another unattributed connection is over the share');
      opts.peerUid = 0;
      const root = await rawExchange(p.port, [
        'GET /gpa-aggregated-status HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n',
      ]);
      assert.deepEqual(statuses(root), [200], "root's direct query counts as root's");
    } finally {
      for (const s of held) s.destroy();
      await p.close();
      await up.close();
    }
  });

  it('a user over its share gets 503, others and root are still served, and a closed connection frees a place', async () => {
    const up = await startUpstream();
    let nextUid = 1000;
    const p = await startProxy(up.port, { uidFor: () => nextUid, limits: { total: 8, perUser: 2 } });
    const held: net.Socket[] = [];
    /** A connection that has sent part of a head (so the agent has accepted it) and waits. */
    const hold = async (uid: number) => {
      nextUid = uid;
      const before = p.listener.connectionCount;
      const s = net.connect(p.port, '127.0.0.1');
      s.on('error', () => {});
      held.push(s);
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      s.write('GET /slow HTTP/1.1\r\n');
      for (let i = 0; i < 100 && p.listener.connectionCount === before && got === ''; i++) await sleep(10);
      await sleep(20);
      return () => got;
    };
    try {
      await hold(1000);
      await hold(1000);
      const third = await hold(1000);
      await sleep(100);
      assert.deepEqual(statuses(third()), [503]);
      assert.match(third(), /too_many_connections/);
      assert.equal(p.listener.connectionCount, 2);
      // Another user has its own share; together non-root callers stop at 6 of 8.
      await hold(1001);
      await hold(1001);
      await hold(1002);
      await hold(1002);
      const overall = await hold(1003);
      await sleep(100);
      assert.deepEqual(statuses(overall()), [503], 'non-root callers hold three quarters of the total');
      // Root is served.
      nextUid = 0;
      const r = await rawExchange(p.port, ['GET /root HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n']);
      assert.deepEqual(statuses(r), [200]);
      // uid 1000 closes one: it may connect again.
      held[0]!.destroy();
      for (let i = 0; i < 100 && p.listener.connectionCount > 5; i++) await sleep(10);
      nextUid = 1000;
      const again = await rawExchange(p.port, ['GET /again HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n']);
      assert.deepEqual(statuses(again), [200]);
      assert.ok(
        p.done.some((d) => d.status === 503 && d.code === 'too_many_connections'),
        'the metrics hook counts refusals',
      );
      assert.ok(!p.audits.some((a) => a.status === 503), 'refusals are not audited');
    } finally {
      for (const s of held) s.destroy();
      await p.close();
      await up.close();
    }
  });
});
