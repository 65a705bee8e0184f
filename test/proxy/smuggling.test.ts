import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { after, before, describe, it } from 'node:test';
import { authorize, compilePolicyPure } from '../../lib/policy/index.js';
import { splitTarget, verifySignature } from '../../lib/signing/index.js';
import {
  headerOf,
  rawExchange,
  startProxy,
  startRawUpstream,
  startUpstream,
  statuses,
  type TestProxy,
} from './helpers.js';

// Framing a hostile client or upstream could use to make the agent and the host disagree on where a
// message ends: request smuggling, reserved headers slipped past the agent, response splitting.

type Upstream = Awaited<ReturnType<typeof startUpstream>>;

function signatureVerifies(p: TestProxy, seen: Upstream['seen'][number]): boolean {
  const auth = seen.rawHeaders.find(([n]) => n.toLowerCase() === 'x-ms-azure-host-authorization');
  if (auth === undefined) return false;
  const { rawPath, rawQuery } = splitTarget(seen.url);
  return verifySignature(
    p.key,
    { method: seen.method, body: seen.body, headers: seen.rawHeaders, rawPath, rawQuery },
    auth[1].split(' ')[2]!,
  );
}

/**
 * A raw upstream that records every byte it receives and answers `200 ok` once a chunked body's
 * last chunk arrived (it does not parse: what it records is exactly what a lenient host would read).
 */
async function recordingUpstream() {
  const got: Buffer[] = [];
  const up = await startRawUpstream((s) => {
    s.on('data', (d: Buffer) => {
      got.push(d);
      if (Buffer.concat(got).includes('0\r\n\r\n')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
  });
  return { ...up, text: () => Buffer.concat(got).toString('latin1') };
}

const SMUGGLED =
  'GET /metadata/identity/oauth2/token?resource=x HTTP/1.1\r\nHost: 169.254.169.254\r\nMetadata: true\r\n\r\n';

describe('streamed (signature-exempt) chunked uploads', () => {
  let up: Awaited<ReturnType<typeof recordingUpstream>>;
  let p: TestProxy;
  before(async () => {
    up = await recordingUpstream();
    p = await startProxy(up.port, { endpoint: 'wireserver', uid: 0 });
  });
  after(async () => {
    await p.close();
    await up.close();
  });

  it('answers 400 to a trailer section ended by a bare LF, and the request behind it never reaches the host', async () => {
    const raw = await rawExchange(p.port, [
      `PUT /vmAgentLog HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\n${SMUGGLED}`,
    ]);
    assert.deepEqual(statuses(raw), [400]);
    assert.doesNotMatch(up.text(), /oauth2|GET \//);
  });

  it('re-frames the body upstream: no chunk extensions, no trailers (reserved names included)', async () => {
    const before = up.text().length;
    const raw = await rawExchange(p.port, [
      'PUT /vmAgentLog HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
      '5;ext="x"\r\nhello\r\n6\r\n world\r\n0\r\n',
      'x-ms-azure-host-claims: { "isRoot": "true"}\r\nx-ms-azure-host-authorization: forged\r\nX-Other: 1\r\n\r\n',
    ]);
    assert.deepEqual(statuses(raw), [200]);
    const sent = up.text().slice(before);
    const head = sent.slice(0, sent.indexOf('\r\n\r\n') + 4);
    assert.match(head, /^PUT \/vmAgentLog HTTP\/1\.1\r\n/);
    assert.match(head, /\r\ntransfer-encoding: chunked\r\n/);
    // Only the data, in chunks of the agent's own framing, and the last chunk without trailers.
    const body = sent.slice(head.length);
    assert.doesNotMatch(body, /ext|forged|isRoot|X-Other/);
    assert.ok(body.endsWith('0\r\n\r\n'), JSON.stringify(body));
    assert.equal(
      body.replace(/[0-9a-f]+\r\n([\s\S]*?)\r\n/g, (_m, d: string) => d).replace(/0\r\n\r\n$/, ''),
      'hello world',
    );
  });
});

describe('signature exemption', () => {
  it('applies to the upload paths on WireServer only: on IMDS the same request is signed and size-limited', async () => {
    const { snapshot } = compilePolicyPure({
      modes: { imds: 'enforce', wireserver: 'enforce', hostga: 'enforce' },
      rules: {},
    });
    const up = await startUpstream();
    const imds = await startProxy(up.port, { uid: 0, decide: (req, c) => authorize(snapshot, req, c) });
    const ws = await startProxy(up.port, {
      endpoint: 'wireserver',
      uid: 0,
      decide: (req, c) => authorize(snapshot, req, c),
    });
    const put = (body: string) =>
      `PUT /vmAgentLog HTTP/1.1\r\nHost: h\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
    try {
      assert.deepEqual(statuses(await rawExchange(imds.port, [put('log-line')])), [200]);
      assert.equal(up.seen.length, 1);
      assert.ok(signatureVerifies(imds, up.seen[0]!), 'IMDS: signed like any other request');
      assert.deepEqual(statuses(await rawExchange(imds.port, [put('x'.repeat(200 * 1024))])), [413]);
      assert.equal(up.seen.length, 1);
      // The control: the WireServer upload is exempt (unsigned, streamed past 100 KiB).
      assert.deepEqual(statuses(await rawExchange(ws.port, [put('x'.repeat(200 * 1024))])), [200]);
      assert.equal(up.seen.length, 2);
      assert.ok(!up.seen[1]!.rawHeaders.some(([n]) => n.toLowerCase() === 'x-ms-azure-host-authorization'));
    } finally {
      await imds.close();
      await ws.close();
      await up.close();
    }
  });
});

describe('leading empty lines', () => {
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
  const GET = 'GET /metadata/instance HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n';

  it('skips up to four before a request', async () => {
    assert.deepEqual(statuses(await rawExchange(p.port, ['\r\n\r\n', '\r\n\r\n' + GET])), [200]);
  });

  it('answers 400 to a fifth, and to a flood of them before it ends', async () => {
    assert.deepEqual(statuses(await rawExchange(p.port, ['\r\n'.repeat(5) + GET])), [400]);
    const flood = Buffer.from('\r\n'.repeat(32 * 1024), 'latin1');
    assert.deepEqual(statuses(await rawExchange(p.port, [flood, flood, flood, flood])), [400]);
    assert.equal(up.seen.length, 1);
  });
});

describe('HTTP/1.0 clients', () => {
  let up: Upstream;
  let p: TestProxy;
  before(async () => {
    up = await startUpstream(); // node:http, which refuses an HTTP/1.1 request without Host
    p = await startProxy(up.port);
  });
  after(async () => {
    await p.close();
    await up.close();
  });

  it('a request without Host goes upstream with the endpoint as Host, covered by the signature', async () => {
    up.seen.length = 0;
    const raw = await rawExchange(p.port, ['GET /metadata/instance HTTP/1.0\r\nMetadata: true\r\n\r\n']);
    assert.deepEqual(statuses(raw), [200]);
    const s = up.seen[0]!;
    assert.deepEqual(
      s.rawHeaders.filter(([n]) => n.toLowerCase() === 'host'),
      [['host', '127.254.169.254']],
    );
    assert.ok(signatureVerifies(p, s));
    // The client's own Host is kept as it is.
    await rawExchange(p.port, ['GET /metadata/instance HTTP/1.0\r\nHost: mine\r\n\r\n']);
    assert.deepEqual(
      up.seen[1]!.rawHeaders.filter(([n]) => n.toLowerCase() === 'host'),
      [['host', 'mine']],
    );
  });

  it('gets no 100 Continue', async () => {
    const raw = await rawExchange(p.port, [
      'POST /x HTTP/1.0\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n',
      'ok',
    ]);
    assert.deepEqual(statuses(raw), [200]);
    assert.ok(raw.startsWith('HTTP/1.1 200 '));
  });
});

describe('upstream response framing', () => {
  it('a repeated response head is taken from the connection’s last parse only when its bytes and the method match', async () => {
    // One upstream connection answers four requests; the first three heads are byte for byte the same.
    const same = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Seq: same\r\n\r\n';
    const answers = [
      same + 'hello',
      same + 'world',
      same /* HEAD: no body */,
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Seq: other\r\n\r\nabc',
    ];
    let connections = 0;
    const up = await startRawUpstream((s) => {
      connections++;
      let pending = '';
      let next = 0;
      s.on('data', (d: Buffer) => {
        pending += d.toString('latin1');
        for (let end = pending.indexOf('\r\n\r\n'); end !== -1; end = pending.indexOf('\r\n\r\n')) {
          pending = pending.slice(end + 4);
          s.write(answers[next++] ?? 'HTTP/1.1 500 Unexpected\r\nContent-Length: 0\r\n\r\n');
        }
      });
    });
    const p = await startProxy(up.port);
    try {
      const raw = await rawExchange(p.port, [
        'GET /1 HTTP/1.1\r\nHost: h\r\n\r\n',
        'GET /2 HTTP/1.1\r\nHost: h\r\n\r\n',
        'HEAD /3 HTTP/1.1\r\nHost: h\r\n\r\n',
        'GET /4 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n',
      ]);
      assert.deepEqual(statuses(raw), [200, 200, 200, 200]);
      const parts = raw.split('HTTP/1.1 200 OK\r\n').slice(1);
      const bodyOf = (part: string) => part.slice(part.indexOf('\r\n\r\n') + 4);
      assert.deepEqual(parts.map(bodyOf), ['hello', 'world', '', 'abc'], JSON.stringify(raw));
      assert.match(parts[2]!, /Content-Length: 5\r\n/, 'HEAD keeps the length of the body it did not get');
      assert.match(parts[3]!, /X-Seq: other\r\n/);
      assert.equal(connections, 1, 'all four on one pooled connection');
    } finally {
      await p.close();
      await up.close();
    }
  });

  it('several Transfer-Encoding lines: the final coding decides; not chunked, the body runs to close and so does the client connection', async () => {
    const wire =
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n';
    const up = await startRawUpstream((s) => s.once('data', () => s.end(wire)));
    const p = await startProxy(up.port);
    try {
      const raw = await rawExchange(p.port, [
        'GET /a HTTP/1.1\r\nHost: h\r\n\r\n',
        'GET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n',
      ]);
      assert.deepEqual(statuses(raw), [200]);
      assert.equal(headerOf(raw, 'connection'), 'close');
      assert.match(raw, /\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n/);
      assert.ok(raw.endsWith('\r\n\r\n5\r\nhello\r\n0\r\n\r\n'), JSON.stringify(raw));
    } finally {
      await p.close();
      await up.close();
    }
  });

  it('answers 502 to a response with both Content-Length and Transfer-Encoding', async () => {
    const wire = 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n';
    const up = await startRawUpstream((s) => s.on('data', () => s.write(wire)));
    const p = await startProxy(up.port);
    try {
      const raw = await rawExchange(p.port, ['GET /a HTTP/1.1\r\nHost: h\r\n\r\n']);
      assert.deepEqual(statuses(raw), [502]);
      assert.doesNotMatch(raw, /hello/);
    } finally {
      await p.close();
      await up.close();
    }
  });
});
