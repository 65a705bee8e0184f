import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ChunkedDecoder, DEFAULT_HEAD_LIMITS, parseRequestHead } from '../../lib/proxy/index.js';

const L = DEFAULT_HEAD_LIMITS;

function parse(text: string | Buffer) {
  const b = Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1');
  return parseRequestHead(b, 0, b.length, L);
}

function status(text: string | Buffer): number | 'ok' | 'incomplete' {
  const r = parse(text);
  return r.kind === 'error' ? r.status : r.kind;
}

const GET = 'GET /metadata/instance?api-version=2021-02-01 HTTP/1.1\r\nHost: 169.254.169.254\r\nMetadata: true\r\n\r\n';

describe('request head parser', () => {
  it('parses a plain GET', () => {
    const r = parse(GET);
    assert.equal(r.kind, 'ok');
    if (r.kind !== 'ok') return;
    assert.equal(r.head.method, 'GET');
    assert.equal(r.head.target, '/metadata/instance?api-version=2021-02-01');
    assert.equal(r.head.version, 11);
    assert.deepEqual(r.head.headers, [
      ['host', '169.254.169.254'],
      ['metadata', 'true'],
    ]);
    assert.equal(r.headEnd, Buffer.byteLength(GET));
    assert.equal(r.head.close, false);
  });

  it('is incomplete on every proper prefix and complete on the whole, split anywhere', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: GET.length - 1 }), (cut) => {
        assert.equal(status(GET.slice(0, cut)), 'incomplete');
      }),
    );
    // Bytes after the head (a pipelined request) do not change the result.
    const r = parse(GET + 'GET / HTTP/1.1\r\n');
    assert.equal(r.kind, 'ok');
    if (r.kind === 'ok') assert.equal(r.headEnd, GET.length);
  });

  it('reads body framing and connection semantics', () => {
    const cl = parse('POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nConnection: close\r\n\r\n');
    assert.ok(cl.kind === 'ok' && cl.head.contentLength === 12 && cl.head.close);
    const te = parse('POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n');
    assert.ok(te.kind === 'ok' && te.head.chunked);
    const h10 = parse('GET /x HTTP/1.0\r\n\r\n');
    assert.ok(h10.kind === 'ok' && h10.head.close && h10.head.version === 10);
    const h10ka = parse('GET /x HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n');
    assert.ok(h10ka.kind === 'ok' && !h10ka.head.close);
    const tokens = parse('GET /x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\n\r\n');
    assert.ok(tokens.kind === 'ok');
    if (tokens.kind === 'ok') assert.deepEqual(tokens.head.connectionTokens, ['x-secret']);
  });

  const rejects: [string, string | Buffer, number][] = [
    [
      'CL and TE together',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n',
      400,
    ],
    ['TE then CL', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n', 400],
    ['duplicate CL (equal)', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n', 400],
    ['CL with sign', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n', 400],
    ['CL list', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n', 400],
    ['TE not chunked', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 400],
    ['TE twice', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    ['TE on HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n', 400],
    ['space before colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', 400],
    ['non-ASCII header value', Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nX-A: caf\xc3\xa9\r\n\r\n', 'latin1'), 400],
    ['NUL in header value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: a\0b\r\n\r\n', 400],
    ['bare LF in header', 'GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n', 400],
    ['bare LF request line', 'GET / HTTP/1.1\nHost: a\r\n\r\n', 400],
    ['HTTP/9.9', 'GET / HTTP/9.9\r\nHost: a\r\n\r\n', 400],
    ['HTTP/2.0', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', 400],
    ['missing Host on 1.1', 'GET / HTTP/1.1\r\n\r\n', 400],
    ['duplicate Host', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
    ['absolute form', 'GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n', 400],
    ['asterisk form', 'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['two spaces', 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 405],
    ['TRACE', 'TRACE / HTTP/1.1\r\nHost: a\r\n\r\n', 405],
    ['FOO', 'FOO / HTTP/1.1\r\nHost: a\r\n\r\n', 405],
    ['lowercase get', 'get / HTTP/1.1\r\nHost: a\r\n\r\n', 405],
    ['Expect other than 100-continue', 'POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n', 417],
    ['URI over 8 KiB', `GET /${'a'.repeat(9000)} HTTP/1.1\r\nHost: a\r\n\r\n`, 414],
    ['header block over 32 KiB', `GET / HTTP/1.1\r\nHost: a\r\nX-A: ${'a'.repeat(40000)}\r\n\r\n`, 431],
    ['too many headers', `GET / HTTP/1.1\r\nHost: a\r\n${'X-A: 1\r\n'.repeat(200)}\r\n`, 431],
    ['five empty lines before the request line', '\r\n'.repeat(5) + GET, 400],
    ['a stream of empty lines, before it ends', '\r\n'.repeat(64 * 1024), 400],
  ];
  for (const [name, text, want] of rejects) {
    it(`rejects ${name} with ${want}`, () => assert.equal(status(text), want));
  }

  it('skips up to four empty lines before the request line, and counts them in the size limits', () => {
    const r = parse('\r\n'.repeat(4) + GET);
    assert.ok(r.kind === 'ok' && r.headEnd === 8 + GET.length && r.head.target.startsWith('/metadata/'));
    const filler = `X-A: ${'a'.repeat(L.maxHeaderBytes - GET.length - 7)}\r\n`;
    const atLimit = GET.replace('\r\n\r\n', `\r\n${filler}\r\n`);
    assert.equal(Buffer.byteLength(atLimit), L.maxHeaderBytes);
    assert.equal(status(atLimit), 'ok');
    assert.equal(status('\r\n' + atLimit), 431);
  });

  it('answers 414 for an endless request line and 431 for an endless header block before they end', () => {
    assert.equal(status(`GET /${'a'.repeat(64 * 1024)}`), 414);
    assert.equal(status(`GET / HTTP/1.1\r\nHost: a\r\nX-A: ${'a'.repeat(1024 * 1024)}`), 431);
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const b = Buffer.concat([Buffer.from('GET / HTTP/1.1\r\n'), Buffer.from(bytes), Buffer.from('\r\n\r\n')]);
        const r = parseRequestHead(b, 0, b.length, L);
        assert.ok(r.kind === 'ok' || r.kind === 'error' || r.kind === 'incomplete');
      }),
    );
  });
});

describe('chunked decoder', () => {
  const body = '5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n';
  it('decodes a body split at any offsets and stops right after the final CRLF', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 40 }), (sizes) => {
        const buf = Buffer.from(body + 'NEXT', 'latin1');
        const d = new ChunkedDecoder();
        const out: Buffer[] = [];
        let p = 0;
        let i = 0;
        let stop = -1;
        while (p < buf.length && stop === -1) {
          const n = sizes[i++ % sizes.length]!;
          const end = Math.min(buf.length, p + n);
          const r = d.feed(buf, p, end, (b, s, e) => out.push(b.subarray(s, e)));
          assert.notEqual(r, -1);
          if (d.done) stop = r;
          p = end;
        }
        assert.equal(Buffer.concat(out).toString(), 'hello world');
        assert.equal(stop, body.length);
        assert.equal(d.total, 11);
      }),
    );
  });

  const bad: [string, string][] = [
    ['non-hex size', 'g\r\nx\r\n0\r\n\r\n'],
    ['negative size', '-1\r\nx\r\n0\r\n\r\n'],
    ['size over 8 hex digits', '100000000\r\n'],
    ['data longer than size', '2\r\nabc\r\n0\r\n\r\n'],
    ['bare LF after size', '3\nabc\r\n0\r\n\r\n'],
    ['missing size', '\r\nabc\r\n'],
    ['space in size', '3 \r\nabc\r\n0\r\n\r\n'],
    ['control in extension', '3;a\x01\r\nabc\r\n0\r\n\r\n'],
    // A lenient upstream ends the trailer section at a bare LF and reads what follows as a request.
    ['bare LF as the trailer section end', '0\r\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n'],
    ['bare LF ending a trailer line', '0\r\nX-A: 1\n\r\n'],
    ['bare LF inside a trailer value', '0\r\nX-A: 1\nGET / HTTP/1.1\r\n\r\n'],
    ['trailer line without a colon', '0\r\nGET / HTTP/1.1\r\n\r\n'],
    ['trailer line starting with a space', '0\r\n X-A: 1\r\n\r\n'],
    ['empty trailer name', '0\r\n: 1\r\n\r\n'],
    ['obs-text in a trailer value', '0\r\nX-A: \xe9\r\n\r\n'],
    ['trailer section over 8 KiB', `0\r\n${'X-A: 1\r\n'.repeat(1200)}\r\n`],
  ];
  for (const [name, text] of bad) {
    it(`rejects ${name}`, () => {
      const d = new ChunkedDecoder();
      const b = Buffer.from(text, 'latin1');
      assert.equal(d.feed(b, 0, b.length), -1);
      assert.ok(d.error);
    });
  }
});
