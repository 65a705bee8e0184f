// Windows identity resolution (pure function; the logon-session lookup is injected): logon id ->
// DOMAIN\user and SID, administrator -> the root-equivalent uid 0, never a default root.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClaimsResolver, windowsClaims } from '../../lib/identity/index.js';

const base = { pid: 4242, tid: 4243, comm: '', cgroupId: 0n, platform: 'win32' as const };
const alice = { userName: 'alice', domain: 'CONTOSO', sid: 'S-1-5-21-1-2-3-1001', logonType: 2 };

test('a non-admin logon session maps to DOMAIN\\user with a non-root uid, whatever uid the backend sent', () => {
  const seen: bigint[] = [];
  const c = windowsClaims({ ...base, uid: 0, gid: 0, logonId: 0x1_0000_03e7n, isAdmin: false }, (id) => {
    seen.push(id);
    return alice;
  });
  assert.deepEqual(seen, [0x1_0000_03e7n], 'all 64 bits of the LUID reach the lookup');
  assert.equal(c.userName, 'CONTOSO\\alice');
  assert.equal(c.sid, alice.sid);
  assert.equal(c.isAdmin, false);
  assert.equal(c.logonId, 0x1_0000_03e7n);
  assert.notEqual(c.uid, 0);
  assert.equal(c.exePath, null);
  assert.equal(c.degraded, null);
});

test('an administrator is uid 0 (root gates mean administrator); a gone session is degraded, not trusted', () => {
  const admin = windowsClaims({ ...base, uid: 0xfffffffe, gid: 0xfffffffe, logonId: 999n, isAdmin: true }, () => ({
    userName: 'SYSTEM',
    domain: 'NT AUTHORITY',
    sid: 'S-1-5-18',
    logonType: 5,
  }));
  assert.equal(admin.uid, 0);
  assert.equal(admin.userName, 'NT AUTHORITY\\SYSTEM');
  const gone = windowsClaims({ ...base, uid: 0xfffffffe, gid: 0xfffffffe, logonId: 5n, isAdmin: false }, () => null);
  assert.equal(gone.userName, null);
  assert.equal(gone.degraded, 'logon-session-unknown');
  const throwing = windowsClaims({ ...base, uid: 0xfffffffe, gid: 0xfffffffe, logonId: 5n, isAdmin: false }, () => {
    throw new Error('LSA refused');
  });
  assert.equal(throwing.userName, null);
});

test('ClaimsResolver routes win32 origins to the logon-session path and leaves Linux unchanged', () => {
  const r = new ClaimsResolver({
    userInfo: () => ({ name: 'root', groups: [{ gid: 0, name: 'root' }] }),
    groupName: () => 'root',
    logonSession: () => alice,
  });
  const w = r.resolve({ ...base, uid: 0xfffffffe, gid: 0xfffffffe, logonId: 7n, isAdmin: false });
  assert.equal(w.userName, 'CONTOSO\\alice');
  const l = r.resolve({ pid: process.pid, tid: process.pid, uid: 0, gid: 0, comm: 'x', cgroupId: 1n });
  assert.equal(l.userName, 'root');
  assert.equal(l.logonId, undefined);
});
