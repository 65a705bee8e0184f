import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseResponseHead } from '../../lib/proxy/index.js';
import { referenceParseResponseHead } from './response-head-reference.js';

// The byte scanner replaced a split/regex parser; the reference (the previous implementation) is
// kept in the test so the two are compared on generated heads, including hostile bytes.

function both(text: string, method = 'GET') {
  const b = Buffer.from(text, 'latin1');
  return [parseResponseHead(b, 0, b.length, method), referenceParseResponseHead(b, 0, b.length, method)] as const;
}

function kindOf(r: ReturnType<typeof parseResponseHead>) {
  return r.kind === 'ok' ? { kind: 'ok', head: r.head, headEnd: r.headEnd } : { kind: r.kind };
}

const OK = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n';

describe('response head parser', () => {
  it('parses a plain response', () => {
    const [r] = both(OK);
    assert.equal(r.kind, 'ok');
    if (r.kind !== 'ok') return;
    assert.equal(r.head.status, 200);
    assert.equal(r.head.reason, 'OK');
    assert.equal(r.head.framing, 'length');
    assert.equal(r.head.contentLength, 12);
    assert.deepEqual(r.head.headers, [
      ['content-type', 'application/json'],
      ['content-length', '12'],
    ]);
  });

  it('rejects malformed status lines and header lines', () => {
    for (const t of [
      'HTTP/1.2 200 OK\r\n\r\n',
      'HTTP/1.1 20 OK\r\n\r\n',
      'HTTP/1.1 2000\r\n\r\n',
      'HTTP/1.1 099 X\r\n\r\n',
      'HTTP/1.1 200 O\rK\r\n\r\n',
      'HTTP/1.1 200 OK\r\n Folded: x\r\n\r\n',
      'HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n',
      'HTTP/1.1 200 OK\r\n: x\r\n\r\n',
      'HTTP/1.1 200 OK\r\nX: a\nb\r\n\r\n',
      'HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
    ]) {
      const [r, ref] = both(t);
      assert.equal(r.kind, 'error', JSON.stringify(t));
      assert.equal(ref.kind, 'error', JSON.stringify(t));
    }
  });

  it('agrees with the reference parser on generated heads', () => {
    const piece = fc.constantFrom(
      'HTTP/1.1 ',
      'HTTP/1.0 ',
      '200',
      '204',
      '304',
      '101',
      ' OK',
      '\r\n',
      '\r',
      '\n',
      '\0',
      '\t',
      ' ',
      '\xa0',
      '\x0b',
      ':',
      'Content-Length: ',
      'Transfer-Encoding: ',
      'Connection: ',
      'chunked',
      'gzip, chunked',
      'close',
      'keep-alive',
      '12',
      'x-a',
      'X-B',
      '\r\n\r\n',
    );
    const text = fc
      .tuple(fc.constantFrom('HTTP/1.1 200 OK\r\n', 'HTTP/1.0 200 OK\r\n', ''), fc.array(piece, { maxLength: 24 }))
      .map(([a, b]) => a + b.join('') + '\r\n\r\n');
    fc.assert(
      fc.property(text, fc.constantFrom('GET', 'HEAD'), (t, method) => {
        const [r, ref] = both(t, method);
        assert.deepEqual(kindOf(r), kindOf(ref), JSON.stringify(t));
      }),
      { numRuns: 3000 },
    );
  });
});
