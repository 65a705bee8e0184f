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
  return [parseResponseHead(b, 0, b.length, method), referenceParseResponseHead(b, 0, b.length, method), b] as const;
}

// Hop-by-hop response headers: read by the parser, never forwarded.
const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
  'x-ms-azure-host-authorization',
]);

/** The header lines of flattened `[start, end)` ranges, as [lowercase name, trimmed value]. */
function linesOf(b: Buffer, ranges: number[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < ranges.length; i += 2) {
    const text = b.toString('latin1', ranges[i], ranges[i + 1]);
    for (const line of text.split('\r\n').slice(0, -1)) {
      const colon = line.indexOf(':');
      out.push([
        line.slice(0, colon).toLowerCase(),
        line.slice(colon + 1).replace(/^[\t\n\v\f\r \xa0]+|[\t\n\v\f\r \xa0]+$/g, ''),
      ]);
    }
  }
  return out;
}

/** The new parser's answer in the reference's terms: forwarded lines decoded, hop headers left out. */
function kindOf(b: Buffer, r: ReturnType<typeof parseResponseHead>) {
  if (r.kind !== 'ok') return { kind: r.kind };
  const h = r.head;
  const status = b.toString('latin1', h.statusRest[0], h.statusRest[1] - 2);
  return {
    kind: 'ok',
    headEnd: r.headEnd,
    status: h.status,
    reason: status.length > 4 ? status.slice(4) : '',
    keep: linesOf(b, h.keep),
    te: linesOf(b, h.te),
    framing: h.framing,
    contentLength: h.contentLength,
    close: h.close,
  };
}

function refKindOf(r: ReturnType<typeof referenceParseResponseHead>) {
  if (r.kind !== 'ok') return { kind: r.kind };
  const h = r.head;
  return {
    kind: 'ok',
    headEnd: r.headEnd,
    status: h.status,
    reason: h.reason,
    keep: h.headers.filter(([n]) => !HOP.has(n) && n !== 'transfer-encoding'),
    te: h.headers.filter(([n]) => n === 'transfer-encoding'),
    framing: h.framing,
    contentLength: h.contentLength,
    close: h.close,
  };
}

const OK = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n';

describe('response head parser', () => {
  it('parses a plain response', () => {
    const [r, , b] = both(OK);
    assert.equal(r.kind, 'ok');
    if (r.kind !== 'ok') return;
    assert.equal(r.head.status, 200);
    assert.equal(b.toString('latin1', ...r.head.statusRest), '200 OK\r\n');
    assert.equal(r.head.framing, 'length');
    assert.equal(r.head.contentLength, 12);
    // Both lines forwarded as they came, in one range.
    assert.deepEqual(r.head.keep, [17, OK.length - 2]);
    assert.equal(b.toString('latin1', ...r.head.keep), 'Content-Type: application/json\r\nContent-Length: 12\r\n');
  });

  it('leaves hop-by-hop lines out of the forwarded ranges, whatever their case', () => {
    const t =
      'HTTP/1.1 200 OK\r\nA: 1\r\nCONNECTION: Keep-Alive\r\nKeep-Alive: timeout=5\r\nB: 2\r\n' +
      'X-MS-Azure-Host-Authorization: forged\r\nTransfer-Encoding: chunked\r\nC: 3\r\n\r\n';
    const [r, , b] = both(t);
    assert.equal(r.kind, 'ok');
    if (r.kind !== 'ok') return;
    assert.deepEqual(linesOf(b, r.head.keep), [
      ['a', '1'],
      ['b', '2'],
      ['c', '3'],
    ]);
    assert.deepEqual(linesOf(b, r.head.te), [['transfer-encoding', 'chunked']]);
    assert.equal(r.head.framing, 'chunked');
    assert.equal(r.head.close, false);
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
        const [r, ref, b] = both(t, method);
        assert.deepEqual(kindOf(b, r), refKindOf(ref), JSON.stringify(t));
      }),
      { numRuns: 3000 },
    );
  });
});
