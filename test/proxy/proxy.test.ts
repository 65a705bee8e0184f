import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SigningKey, splitTarget, verifySignature } from '../../lib/signing/index.js';
import {
  allowAll,
  headerOf,
  KEY_GUID,
  keepAliveClient,
  randomSplit,
  rawExchange,
  startProxy,
  startRawUpstream,
  startUpstream,
  statuses,
  type TestProxy,
  testHmac,
} from './helpers.js';

type Upstream = Awaited<ReturnType<typeof startUpstream>>;

function verify(p: TestProxy, seen: Upstream['seen'][number]): boolean {
  const auth = seen.rawHeaders.find(([n]) => n.toLowerCase() === 'x-ms-azure-host-authorization');
  if (auth === undefined) return false;
  const [scheme, guid, hex] = auth[1].split(' ');
  assert.equal(scheme, 'Azure-HMAC-SHA256');
  assert.equal(guid, KEY_GUID);
  const { rawPath, rawQuery } = splitTarget(seen.url);
  return verifySignature(
    p.key,
    { method: seen.method, body: seen.body, headers: seen.rawHeaders, rawPath, rawQuery },
    hex!,
  );
}

describe('proxy forwarding', () => {
  let up: Upstream;
  let p: TestProxy;
  before(async () => {
    up = await startUpstream();
    p = await startProxy(up.port);
  });
  after(async () => {
    await p.close();
    await up.close();
  });

  it('forwards a GET signed, strips reserved and hop-by-hop headers, and marks the response', async () => {
    up.seen.length = 0;
    const raw = await rawExchange(p.port, [
      'GET /metadata/instance?api-version=2021-02-01 HTTP/1.1\r\nHost: 169.254.169.254\r\nMetadata: true\r\n' +
        'x-ms-azure-host-authorization: Azure-HMAC-SHA256 forged\r\nX-MS-Azure-Host-Claims: { "isRoot": "true"}\r\n' +
        'x-ms-azure-host-date: Thu, 01 Jan 1970 00:00:00 GMT\r\nConnection: close, X-Hop\r\nX-Hop: secret\r\nTE: trailers\r\n\r\n',
    ]);
    assert.deepEqual(statuses(raw), [200]);
    assert.ok(raw.endsWith('upstream-ok'));
    assert.equal(headerOf(raw, 'x-ms-azure-host-authorization'), 'value');
    assert.equal(up.seen.length, 1);
    const s = up.seen[0]!;
    const names = s.rawHeaders.map(([n]) => n.toLowerCase());
    assert.ok(!names.includes('x-hop') && !names.includes('te') && !names.includes('connection'));
    assert.equal(names.filter((n) => n === 'x-ms-azure-host-authorization').length, 1);
    assert.equal(s.rawHeaders.find(([n]) => n === 'x-ms-azure-host-claims')?.[1], '{ "isRoot": "false"}');
    assert.notEqual(s.rawHeaders.find(([n]) => n === 'x-ms-azure-host-date')?.[1], 'Thu, 01 Jan 1970 00:00:00 GMT');
    assert.ok(verify(p, s), 'signature verifies over what the upstream received');
  });

  it('keeps the client connection alive and reuses the upstream connection', async () => {
    const before = up.sockets();
    const req = 'GET /metadata/instance HTTP/1.1\r\nHost: h\r\n\r\n';
    const raw = await rawExchange(p.port, [req, req, req.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n')], 3000);
    assert.deepEqual(statuses(raw), [200, 200, 200]);
    assert.ok(up.sockets() - before <= 1, 'at most one new upstream connection for three requests');
  });

  it('closes at once after a Connection: close response, without waiting for the client to close', async () => {
    // The client reads the whole response and keeps its own side open: the agent must not hold the
    // connection until the client's FIN (or a timeout), and the client must see the full response.
    const s = net.connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true });
    const got: Buffer[] = [];
    s.on('data', (c: Buffer) => got.push(c));
    const ended = new Promise<void>((resolve) => s.once('end', resolve));
    s.write('GET /metadata/instance HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
    await ended; // the agent's FIN, while this side is still open
    const raw = Buffer.concat(got).toString('latin1');
    assert.deepEqual(statuses(raw), [200]);
    const length = Number(headerOf(raw, 'content-length'));
    assert.equal(raw.length - (raw.indexOf('\r\n\r\n') + 4), length, 'the whole body arrived');
    const deadline = Date.now() + 2000;
    while (p.listener.connectionCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(p.listener.connectionCount, 0, 'the agent released the connection while the client kept it open');
    s.destroy();
  });

  it('closes only after everything queued for a slow client went out', async () => {
    // Pipelined requests whose responses together exceed the kernel's socket buffers, read by a
    // client that waits first: the last responses, the `Connection: close` one included, are still
    // queued in the agent when it finishes, so the close must wait for them instead of dropping
    // them with the socket.
    const size = 60 * 1024;
    const count = 100;
    const bigUp = await startUpstream((_q, res) => {
      res.setHeader('content-length', size);
      res.end(Buffer.alloc(size, 'b'));
    });
    const px = await startProxy(bigUp.port);
    const s = net.connect({ port: px.port, host: '127.0.0.1' });
    try {
      const got: Buffer[] = [];
      s.pause();
      s.on('data', (c: Buffer) => got.push(c));
      const ended = new Promise<void>((resolve) => s.once('end', resolve));
      const req = 'GET /big HTTP/1.1\r\nHost: h\r\n\r\n';
      s.write(req.repeat(count - 1) + req.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n'));
      const deadline = Date.now() + 5000;
      while (bigUp.seen.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(bigUp.seen.length, count, 'the agent forwarded every request while the client read nothing');
      s.resume();
      await ended;
      const raw = Buffer.concat(got).toString('latin1');
      assert.equal(statuses(raw).length, count);
      const heads = raw.split('\r\n\r\n').length - 1;
      assert.equal(heads, count);
      assert.equal(raw.length - raw.lastIndexOf('\r\n\r\n') - 4, size, 'the last body arrived whole');
      assert.equal((raw.match(/b/g) ?? []).length, count * size, 'every body arrived whole');
    } finally {
      s.destroy();
      await px.close();
      await bigUp.close();
    }
  });

  it('half-closes instead when the client already sent more after its Connection: close request', async () => {
    // Bytes the agent will never read: closing outright could reset the connection and destroy the
    // response in flight, so the client must still get it complete.
    const raw = await rawExchange(p.port, [
      `GET /metadata/instance HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /more HTTP/1.1\r\nHost: h\r\nX-Pad: ${'p'.repeat(8000)}\r\n\r\n`,
    ]);
    assert.deepEqual(statuses(raw), [200]);
    const length = Number(headerOf(raw, 'content-length'));
    assert.equal(raw.length - (raw.indexOf('\r\n\r\n') + 4), length, 'the whole body arrived');
  });

  it('answers pipelined requests in order, one at a time', async () => {
    up.seen.length = 0;
    const reqs =
      'GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyzGET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n';
    const raw = await rawExchange(p.port, randomSplit(reqs));
    assert.deepEqual(statuses(raw), [200, 200, 200]);
    assert.deepEqual(
      up.seen.map((s) => s.url),
      ['/a', '/b', '/c'],
    );
    assert.equal(up.seen[1]!.body.toString(), 'xyz');
  });

  it('decodes a chunked body, forwards it with a length and signs the body', async () => {
    up.seen.length = 0;
    const raw = await rawExchange(
      p.port,
      randomSplit(
        'POST /metadata/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n',
      ),
    );
    assert.deepEqual(statuses(raw), [200]);
    const s = up.seen[0]!;
    assert.equal(s.body.toString(), 'abcdefg');
    assert.equal(s.rawHeaders.find(([n]) => n === 'content-length')?.[1], '7');
    assert.ok(verify(p, s));
  });

  it('rejects a body over 100 KiB with 413 and forwards nothing', async () => {
    up.seen.length = 0;
    const raw = await rawExchange(p.port, [
      `POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: ${200 * 1024}\r\n\r\n`,
      'a'.repeat(1000),
    ]);
    assert.deepEqual(statuses(raw), [413]);
    const chunked = await rawExchange(p.port, [
      'POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n',
      `${(200 * 1024).toString(16)}\r\n`,
      'a'.repeat(200 * 1024),
    ]);
    assert.deepEqual(statuses(chunked), [413]);
    assert.equal(up.seen.length, 0);
  });

  it('streams a 1 MiB upload to an exempt WireServer path unsigned, and still strips reserved headers', async () => {
    up.seen.length = 0;
    const ws = await startProxy(up.port, { endpoint: 'wireserver', uid: 0 });
    try {
      const big = Buffer.alloc(1024 * 1024, 'z');
      const raw = await rawExchange(ws.port, [
        `PUT /vmAgentLog HTTP/1.1\r\nHost: h\r\nContent-Length: ${big.length}\r\nx-ms-azure-host-authorization: forged\r\nConnection: close\r\n\r\n`,
        big,
      ]);
      assert.deepEqual(statuses(raw), [200]);
      const s = up.seen[0]!;
      assert.equal(s.body.length, big.length);
      assert.ok(!s.rawHeaders.some(([n]) => n.toLowerCase() === 'x-ms-azure-host-authorization'));
    } finally {
      await ws.close();
    }
  });

  it('handles Expect: 100-continue itself', async () => {
    const raw = await rawExchange(p.port, [
      'POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n',
      'ok',
    ]);
    assert.ok(raw.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 '));
  });

  for (const [name, req, want] of [
    ['CL+TE', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['bad chunk size', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400],
    ['absolute form', 'GET http://evil.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n', 400],
    ['TRACE', 'TRACE / HTTP/1.1\r\nHost: h\r\n\r\n', 405],
    ['64 KB URI', `GET /${'a'.repeat(64 * 1024)} HTTP/1.1\r\nHost: h\r\n\r\n`, 414],
    ['1 MB headers', `GET / HTTP/1.1\r\nHost: h\r\nX: ${'a'.repeat(1024 * 1024)}\r\n\r\n`, 431],
  ] as const) {
    it(`answers ${name} with ${want}, closes, and forwards nothing`, async () => {
      up.seen.length = 0;
      const raw = await rawExchange(p.port, [req]);
      assert.deepEqual(statuses(raw), [want]);
      assert.match(raw, /connection: close/);
      if (want === 405) assert.match(raw, /allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH/);
      assert.equal(up.seen.length, 0);
    });
  }

  it('records one audit record and one metrics report per request', async () => {
    const a0 = p.audits.length;
    const d0 = p.done.length;
    await rawExchange(p.port, ['GET /m HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n']);
    await rawExchange(p.port, ['FOO / HTTP/1.1\r\nHost: h\r\n\r\n']);
    assert.equal(p.audits.length - a0, 2);
    assert.equal(p.done.length - d0, 2);
    const [ok, bad] = p.audits.slice(a0);
    assert.equal(ok!.status, 200);
    assert.equal(ok!.outcome, 'allow');
    assert.equal(ok!.signed, true);
    assert.equal(bad!.status, 405);
    assert.equal(bad!.code, 'method_not_allowed');
    // A head refused while parsing still names its request line once that was read.
    assert.equal(bad!.method, 'FOO');
    assert.equal(bad!.target, '/');
    await rawExchange(p.port, ['GET /h HTTP/1.1\r\nHost: h\r\nbad header\r\n\r\n']);
    await rawExchange(p.port, ['GET /v HTTP/3.0\r\nHost: h\r\n\r\n']);
    await rawExchange(p.port, [`${'M'.repeat(20_000)} /long-method HTTP/1.1\r\nHost: h\r\n\r\n`]);
    assert.equal(p.audits.at(-1)!.method, 'M'.repeat(32), 'a refused method is cut, as targets are');
    const [badHeader, badVersion] = p.audits.slice(-3, -1);
    assert.deepEqual([badHeader!.status, badHeader!.method, badHeader!.target], [400, 'GET', '/h']);
    assert.deepEqual([badVersion!.status, badVersion!.method, badVersion!.target], [400, '', '']);
  });
});

describe('proxy decisions and attribution', () => {
  it('answers an enforce-mode deny with 403 and forwards nothing', async () => {
    const up = await startUpstream();
    const p = await startProxy(up.port, {
      decide: (req) => ({
        outcome: 'deny',
        forward: false,
        status: 403,
        code: 'DENY_TEST',
        endpoint: req.endpoint,
        mode: 'enforce',
        ruleId: 'r1',
        signatureExempt: false,
        policyVersion: 1,
      }),
    });
    try {
      const raw = await rawExchange(p.port, ['GET /metadata/identity/oauth2/token HTTP/1.1\r\nHost: h\r\n\r\n']);
      assert.deepEqual(statuses(raw), [403]);
      assert.equal(up.seen.length, 0);
      assert.equal(p.audits.at(-1)!.code, 'DENY_TEST');
    } finally {
      await p.close();
      await up.close();
    }
  });

  it("reuses a keep-alive connection's decision for a repeated request, never across snapshots or targets", async () => {
    const up = await startUpstream();
    const calls: string[] = [];
    const p = await startProxy(up.port, {
      decide: (req) => {
        calls.push(req.rawTarget);
        return allowAll(req);
      },
    });
    const client = await keepAliveClient(p.port);
    const ask = (target: string) => client.ask(`GET ${target} HTTP/1.1\r\nHost: h\r\n\r\n`);
    try {
      assert.equal(await ask('/metadata/instance?api-version=1'), 200);
      assert.equal(await ask('/metadata/instance?api-version=1'), 200);
      assert.deepEqual(calls, ['/metadata/instance?api-version=1']);
      assert.equal(await ask('/metadata/instance?api-version=2'), 200);
      assert.equal(calls.length, 2);
      // A new snapshot (new policy or key) decides afresh, on the same connection and target.
      p.listener.setSnapshot({
        ...p.listener.ctx.snapshot,
        epoch: 2,
        decide: (req) => ({ ...allowAll(req), outcome: 'deny', forward: false, status: 403, code: 'DENY_TEST' }),
      });
      assert.equal(await ask('/metadata/instance?api-version=2'), 403);
      assert.equal(calls.length, 2);
      assert.equal(p.audits.at(-1)!.code, 'DENY_TEST');
      assert.equal(up.seen.length, 3);
    } finally {
      client.close();
      await p.close();
      await up.close();
    }
  });

  it('signs a repeated head correctly across seconds, header changes and a new key', async () => {
    const up = await startUpstream();
    const p = await startProxy(up.port);
    const client = await keepAliveClient(p.port);
    const ask = client.ask;
    const headerOfSeen = (i: number, name: string) =>
      up.seen[i]!.rawHeaders.find(([n]) => n.toLowerCase() === name)?.[1];
    try {
      const a = 'GET /metadata/instance?api-version=1 HTTP/1.1\r\nHost: h\r\nMetadata: true\r\n\r\n';
      const b = 'GET /metadata/instance?api-version=1 HTTP/1.1\r\nHost: h\r\nMetadata: false\r\n\r\n';
      assert.equal(await ask(a), 200);
      assert.equal(await ask(a), 200);
      assert.equal(await ask(b), 200);
      // A date one second later must be signed anew.
      await new Promise((r) => setTimeout(r, 1100));
      assert.equal(await ask(b), 200);
      assert.equal(up.seen.length, 4);
      for (let i = 0; i < 4; i++) assert.ok(verify(p, up.seen[i]!), `request ${i} signed validly`);
      assert.equal(headerOfSeen(2, 'metadata'), 'false');
      assert.notEqual(headerOfSeen(2, 'x-ms-azure-host-date'), headerOfSeen(3, 'x-ms-azure-host-date'));
      // A new key (new snapshot): the same head is signed with it.
      const key2 = randomBytes(32);
      const guid2 = '11111111-2222-3333-4444-555555555555';
      p.listener.setSnapshot({
        ...p.listener.ctx.snapshot,
        epoch: 2,
        key: { guid: guid2, signingKey: new SigningKey(key2, testHmac()) },
      });
      assert.equal(await ask(b), 200);
      const last = up.seen[4]!;
      const auth = headerOfSeen(4, 'x-ms-azure-host-authorization')!.split(' ');
      assert.equal(auth[1], guid2);
      const { rawPath, rawQuery } = splitTarget(last.url);
      assert.ok(
        verifySignature(
          key2,
          { method: last.method, body: last.body, headers: last.rawHeaders, rawPath, rawQuery },
          auth[2]!,
        ),
      );
    } finally {
      client.close();
      await p.close();
      await up.close();
    }
  });

  it('answers 421 to an unattributed connection but serves /provision and root-only status locally', async () => {
    const up = await startUpstream();
    const p = await startProxy(up.port, { attributed: false, peerUid: 1000 });
    try {
      assert.deepEqual(
        statuses(await rawExchange(p.port, ['GET /metadata/instance HTTP/1.1\r\nHost: h\r\n\r\n'])),
        [421],
      );
      const prov = await rawExchange(p.port, ['GET /provision HTTP/1.1\r\nHost: h\r\nMetadata: true\r\n\r\n']);
      assert.deepEqual(statuses(prov), [200]);
      assert.deepEqual(JSON.parse(prov.slice(prov.indexOf('\r\n\r\n') + 4)), { finished: true, errorMessage: '' });
      assert.deepEqual(statuses(await rawExchange(p.port, ['GET /provision HTTP/1.1\r\nHost: h\r\n\r\n'])), [400]);
      const st = await rawExchange(p.port, ['GET /gpa-aggregated-status HTTP/1.1\r\nHost: h\r\n\r\n']);
      assert.deepEqual(statuses(st), [403]);
      assert.equal(up.seen.length, 0);
      // Local answers are neither decisions nor errors; a 421 miss is an error.
      const outcomes = p.audits.map((a) => `${a.status} ${a.outcome}`);
      assert.deepEqual(outcomes, ['421 error', '200 local', '400 local', '403 local']);
    } finally {
      await p.close();
      await up.close();
    }
  });

  it('forwards unsigned but still with claims and date when no key is held', async () => {
    const up = await startUpstream();
    const p = await startProxy(up.port, { withKey: false, uid: 0 });
    try {
      await rawExchange(p.port, [
        'GET /x HTTP/1.1\r\nHost: h\r\nx-ms-azure-host-authorization: forged\r\nConnection: close\r\n\r\n',
      ]);
      const s = up.seen[0]!;
      assert.ok(!s.rawHeaders.some(([n]) => n === 'x-ms-azure-host-authorization'));
      assert.equal(s.rawHeaders.find(([n]) => n === 'x-ms-azure-host-claims')?.[1], '{ "isRoot": "true"}');
    } finally {
      await p.close();
      await up.close();
    }
  });
});

describe('upstream framing and failures', () => {
  it('relays chunked, close-delimited and HEAD responses with correct framing', async () => {
    const up = await startRawUpstream((s) => {
      s.on('data', (d: Buffer) => {
        const t = d.toString('latin1');
        if (t.startsWith('GET /chunked')) {
          s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n3\r\nabc');
          setTimeout(() => s.write('\r\n2\r\nde\r\n0\r\n\r\n'), 20);
        } else if (t.startsWith('GET /close')) {
          s.end('HTTP/1.1 200 OK\r\n\r\nuntil-close');
        } else if (t.startsWith('HEAD')) {
          s.write('HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n');
        }
      });
    });
    const p = await startProxy(up.port);
    try {
      const raw = await rawExchange(p.port, [
        'GET /chunked HTTP/1.1\r\nHost: h\r\n\r\n',
        'HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n',
        'GET /close HTTP/1.1\r\nHost: h\r\n\r\n',
      ]);
      assert.deepEqual(statuses(raw), [200, 200, 200]);
      // Header lines are forwarded as the upstream wrote them; its hop-by-hop Connection is not.
      assert.match(raw, /Transfer-Encoding: chunked\r\n/);
      assert.match(raw, /3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n/);
      assert.match(raw, /Content-Length: 999\r\n/);
      assert.doesNotMatch(raw, /keep-alive/i);
      assert.ok(raw.endsWith('connection: close\r\n\r\nuntil-close'));
      // An HTTP/1.0 client cannot take chunked: the agent decodes it and closes.
      const v10 = await rawExchange(p.port, ['GET /chunked HTTP/1.0\r\n\r\n']);
      assert.ok(v10.endsWith('\r\n\r\nabcde'));
      assert.doesNotMatch(v10, /transfer-encoding/i);
    } finally {
      await p.close();
      await up.close();
    }
  });

  it('answers 502 when the upstream is unreachable and 503 when it never answers', async () => {
    const hang = await startRawUpstream(() => {});
    const dead = await startRawUpstream(() => {});
    const deadPort = dead.port;
    await dead.close();
    const p1 = await startProxy(deadPort);
    const p2 = await startProxy(hang.port, { timeouts: { responseMs: 300 } });
    try {
      assert.deepEqual(statuses(await rawExchange(p1.port, ['GET / HTTP/1.1\r\nHost: h\r\n\r\n'])), [502]);
      assert.deepEqual(statuses(await rawExchange(p2.port, ['GET / HTTP/1.1\r\nHost: h\r\n\r\n'])), [503]);
      assert.equal(p2.done.at(-1)!.upstreamError, 'timeout');
    } finally {
      await p1.close();
      await p2.close();
      await hang.close();
    }
  });

  it('closes a slowloris connection with 408', async () => {
    const up = await startUpstream();
    const p = await startProxy(up.port, { timeouts: { headerMs: 300 } });
    try {
      const pieces: string[] = ['GET / HTTP/1.1\r\n'];
      const raw = await new Promise<string>((resolve) => {
        import('node:net').then(({ default: net }) => {
          const s = net.connect(p.port, '127.0.0.1');
          let got = '';
          let i = 0;
          const t = setInterval(() => {
            if (!s.destroyed) s.write(i++ === 0 ? pieces[0]! : 'X-A: 1\r\n');
          }, 100);
          s.on('data', (d) => (got += d.toString('latin1')));
          s.on('error', () => {});
          s.on('close', () => {
            clearInterval(t);
            resolve(got);
          });
          setTimeout(() => s.destroy(), 5000);
        });
      });
      assert.deepEqual(statuses(raw), [408]);
      assert.equal(up.seen.length, 0);
    } finally {
      await p.close();
      await up.close();
    }
  });
});
