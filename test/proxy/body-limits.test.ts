import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { describe, it } from 'node:test';
import { BodyBuffer } from '../../lib/proxy/body-buffer.js';
import { rawExchange, startProxy, startUpstream, statuses } from './helpers.js';

// What a buffered request body may cost the agent: its memory is bounded by the body limit, not by
// how the client framed or trickled it, and chunk framing far beyond the body's size is refused.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function chunked(body: Buffer, chunk: number, ext = ''): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < body.length; i += chunk) {
    const piece = body.subarray(i, i + chunk);
    parts.push(Buffer.from(`${piece.length.toString(16)}${ext}\r\n`, 'latin1'), piece, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

describe('BodyBuffer', () => {
  it('copies every piece into one buffer, so the pieces and what they came in are not kept', () => {
    const b = new BodyBuffer(100 * 1024);
    const source = Buffer.alloc(64 * 1024, 'a');
    for (let i = 0; i < 3000; i++) b.push(source, i, i + 1);
    const out = b.bytes();
    assert.equal(out.length, 3000);
    assert.notEqual(out.buffer, source.buffer, 'a copy, not a view of the read buffer');
    assert.ok(out.buffer.byteLength <= 8192, `grown by doubling from 4 KiB: ${out.buffer.byteLength}`);
  });

  it('a Content-Length body is allocated once at its size, and never beyond the limit', () => {
    const b = new BodyBuffer(1000, 700);
    b.push(Buffer.alloc(300, 1), 0, 300);
    b.push(Buffer.alloc(400, 2), 0, 400);
    assert.equal(b.bytes().buffer.byteLength >= 700, true);
    const capped = new BodyBuffer(5000);
    for (let i = 0; i < 5; i++) capped.push(Buffer.alloc(1000, i), 0, 1000);
    assert.equal(capped.length, 5000);
    assert.ok(capped.bytes().buffer.byteLength <= 8192);
  });
});

describe('buffered request bodies', () => {
  it('a body in small chunks arrives whole and in order', async () => {
    const up = await startUpstream();
    const p = await startProxy(up.port);
    try {
      const body = Buffer.from(Array.from({ length: 60 * 1024 }, (_, i) => 97 + (i % 26)));
      const head = 'POST /metadata/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n';
      const raw = await rawExchange(p.port, [head, chunked(body, 16)]);
      assert.deepEqual(statuses(raw), [200]);
      assert.ok(up.seen[0]?.body.equals(body), 'the upstream got the same bytes');
    } finally {
      await p.close();
      await up.close();
    }
  });

  it('a body trickled in many reads arrives whole', async () => {
    const up = await startUpstream();
    const p = await startProxy(up.port);
    try {
      const body = Buffer.from('0123456789'.repeat(30));
      const head = `POST /metadata/x HTTP/1.1\r\nHost: h\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
      const s = net.connect(p.port, '127.0.0.1');
      s.setNoDelay(true);
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      const closed = new Promise<void>((r) => s.once('close', () => r()));
      s.write(head);
      for (let i = 0; i < body.length; i += 30) {
        s.write(body.subarray(i, i + 30));
        await sleep(2);
      }
      await closed;
      assert.deepEqual(statuses(got), [200]);
      assert.ok(up.seen[0]?.body.equals(body));
    } finally {
      await p.close();
      await up.close();
    }
  });

  it('chunk framing far beyond the body size is refused with 413 before the client is done', async () => {
    const up = await startUpstream();
    const p = await startProxy(up.port);
    try {
      // 1-byte chunks behind 1000-byte extensions: 50 KiB of body in about 50 MB of framing.
      const frames = chunked(Buffer.alloc(50 * 1024, 'x'), 1, `;${'e'.repeat(1000)}`);
      const head = 'POST /metadata/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n';
      const s = net.connect(p.port, '127.0.0.1');
      s.on('error', () => {});
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      const closed = new Promise<void>((r) => s.once('close', () => r()));
      s.write(head);
      let sent = 0;
      let over = false;
      void closed.then(() => (over = true));
      for (let i = 0; i < frames.length && !over && got === ''; i += 64 * 1024) {
        const flushed = s.write(frames.subarray(i, i + 64 * 1024));
        sent += 64 * 1024;
        // Waits for room, or for the agent's answer and close (then 'drain' never comes).
        if (!flushed) await Promise.race([new Promise((r) => s.once('drain', r)), closed, sleep(500)]);
      }
      await Promise.race([closed, sleep(3000)]);
      s.destroy();
      assert.deepEqual(statuses(got), [413]);
      assert.match(got, /chunked framing over/);
      // The agent stops at ~464 KB; what the client wrote beyond that sat in loopback socket buffers.
      assert.ok(sent < 16 * 1024 * 1024, `answered after ${sent} of ${frames.length} bytes of framing`);
      assert.equal(up.seen.length, 0, 'nothing forwarded');
    } finally {
      await p.close();
      await up.close();
    }
  });
});
