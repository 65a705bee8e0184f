import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CallerClaims } from '../../lib/proxy/index.js';
import { RequestMemos } from '../../lib/proxy/request-memo.js';
import { splitTarget, verifySignature } from '../../lib/signing/index.js';
import { allowAll, claims, headerOf, rawExchange, startProxy, startUpstream, statuses } from './helpers.js';

/** Claims as the resolver hands them out for a process it fully identified: one frozen object, reused. */
function sharedClaims(uid: number): CallerClaims {
  const c = claims(uid);
  Object.freeze(c.groups);
  return Object.freeze(c);
}

describe('request memos (per caller and endpoint)', () => {
  it('shares a memo only for the same frozen claims object and endpoint', () => {
    const memos = new RequestMemos();
    const a = sharedClaims(1000);
    const b = sharedClaims(1000); // equal content, another object: another process's claims
    assert.equal(memos.forConnection(a, 'imds'), memos.forConnection(a, 'imds'));
    assert.notEqual(memos.forConnection(a, 'imds'), memos.forConnection(a, 'wireserver'));
    assert.notEqual(memos.forConnection(a, 'imds'), memos.forConnection(b, 'imds'));
    const unfrozen = claims(1000); // built for one connection only
    assert.notEqual(memos.forConnection(unfrozen, 'imds'), memos.forConnection(unfrozen, 'imds'));
    assert.notEqual(memos.forConnection(null, 'imds'), memos.forConnection(null, 'imds'));
    assert.notEqual(memos.forConnection(a, null), memos.forConnection(a, null));
  });

  it("reuses a caller's decision and signed head on its next connection, never another caller's", async () => {
    const up = await startUpstream();
    const root = sharedClaims(0);
    const user = sharedClaims(1000);
    let next = root;
    const decided: number[] = [];
    const p = await startProxy(up.port, {
      claims: () => next,
      // Root may read the token path; anyone else is denied.
      decide: (req, caller) => {
        decided.push(caller.uid);
        return caller.uid === 0
          ? allowAll(req)
          : { ...allowAll(req), outcome: 'deny', forward: false, status: 403, code: 'DENY_TEST' };
      },
    });
    const request =
      'GET /metadata/identity/oauth2/token HTTP/1.1\r\nHost: h\r\nMetadata: true\r\nConnection: close\r\n\r\n';
    try {
      // Two connections of the same caller: one decision; both forwarded requests carry a valid signature.
      assert.deepEqual(statuses(await rawExchange(p.port, [request])), [200]);
      assert.deepEqual(statuses(await rawExchange(p.port, [request])), [200]);
      assert.deepEqual(decided, [0]);
      assert.equal(up.seen.length, 2);
      for (const seen of up.seen) {
        const auth = seen.rawHeaders.find(([n]) => n.toLowerCase() === 'x-ms-azure-host-authorization')!;
        const { rawPath, rawQuery } = splitTarget(seen.url);
        const hex = auth[1].split(' ')[2]!;
        const parts = { method: seen.method, body: seen.body, headers: seen.rawHeaders, rawPath, rawQuery };
        assert.ok(verifySignature(p.key, parts, hex));
      }
      // The same bytes from another caller are decided for that caller: denied, nothing forwarded.
      next = user;
      assert.deepEqual(statuses(await rawExchange(p.port, [request])), [403]);
      assert.deepEqual(decided, [0, 1000]);
      assert.equal(up.seen.length, 2);
      // And root's memo is still root's.
      next = root;
      assert.deepEqual(statuses(await rawExchange(p.port, [request])), [200]);
      assert.deepEqual(decided, [0, 1000]);
      const audited = p.audits.map((a) => `${a.caller?.uid} ${a.status} ${a.code}`);
      assert.deepEqual(audited, ['0 200 ALLOW_TEST', '0 200 ALLOW_TEST', '1000 403 DENY_TEST', '0 200 ALLOW_TEST']);
    } finally {
      await p.close();
      await up.close();
    }
  });

  it('frames for an HTTP/1.0 client on every connection that reuses its head', async () => {
    const up = await startUpstream((_q, res) => {
      res.write('part1-');
      res.end('part2'); // no length: chunked to an HTTP/1.1 hop
    });
    const same = sharedClaims(1000);
    const p = await startProxy(up.port, { claims: () => same });
    try {
      for (let i = 0; i < 2; i++) {
        const raw = await rawExchange(p.port, ['GET /chunked HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n']);
        assert.deepEqual(statuses(raw), [200], `connection ${i}`);
        assert.equal(headerOf(raw, 'transfer-encoding'), undefined, `connection ${i}: no chunked to HTTP/1.0`);
        assert.equal(raw.slice(raw.indexOf('\r\n\r\n') + 4), 'part1-part2', `connection ${i}`);
      }
      assert.equal(up.seen.length, 2);
    } finally {
      await p.close();
      await up.close();
    }
  });
});
