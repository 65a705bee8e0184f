/**
 * End-to-end authorization with host-sent rules (scenarios 12–19 of acceptance.md): real eBPF in a
 * child cgroup, the emulator on loopback aliases, the agent as `gpa run`; the invariant is checked
 * after each test: nothing unsigned ever reaches IMDS while it is in Enforce mode.
 */
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { ebpfGate } from '../helpers/ebpf-env.js';
import { NOBODY, PYTHON, repoRoot, type Stack, startStack, unsignedAt } from './harness.js';

const gate = ebpfGate();
const FIX = path.join(repoRoot, 'test', 'e2e', 'fixtures');
const N = { uid: NOBODY, gid: 65534 };
const V = 'api-version=2021-02-01';

function item(defaultAccess: 'allow' | 'deny', id: string, r: Partial<Record<string, unknown[]>> = {}) {
  return {
    defaultAccess,
    id,
    rules: {
      privileges: r.privileges ?? [],
      roles: r.roles ?? [],
      identities: r.identities ?? [],
      roleAssignments: r.roleAssignments ?? [],
    },
  };
}

/** One privilege on `path` (optionally with query constraints) granted to one identity. */
function grant(
  id: string,
  identity: Record<string, string>,
  pathPrefix = '/metadata/instance',
  query?: Record<string, string>,
) {
  return item('deny', id, {
    privileges: [{ name: 'p', path: pathPrefix, ...(query ? { queryParameters: query } : {}) }],
    roles: [{ name: 'r', privileges: ['p'] }],
    identities: [{ name: 'i', ...identity }],
    roleAssignments: [{ role: 'r', identities: ['i'] }],
  });
}

describe('e2e: host rules (enforce and audit)', { skip: gate.skip }, () => {
  let s: Stack;
  let imdsEnforce = true;
  const url = (p: string) => `${s.imds}${p}`;
  const [host, port] = ['', ''];
  void host;
  void port;
  const hp = () => {
    const u = new URL(s.imds);
    return [u.hostname, u.port || '80'] as const;
  };
  const seqNow = () => s.emulator.journal().at(-1)?.seq ?? 0;

  before(async () => {
    gate.check();
    s = await startStack({
      settings: { enabled: true, modes: { imds: 'enforce', wireserver: 'enforce' } },
      workers: 1,
    });
    await s.waitForLog(/redirecting imds/);
  });
  after(async () => {
    await s?.cleanup();
  });
  afterEach(() => {
    if (imdsEnforce)
      assert.deepEqual(unsignedAt(s.emulator.journal(), 'imds'), [], 'invariant: no unsigned IMDS request');
  });

  it('12: enforce + defaultAccess deny with no rules: IMDS 403 for everyone, host sees nothing', async () => {
    await s.configureHost({ rules: { imds: item('deny', 'r12') } });
    const seq = seqNow();
    assert.equal((await s.curl(url(`/metadata/instance?${V}`), N)).status, 403);
    assert.equal((await s.curl(url(`/metadata/instance?${V}`))).status, 403);
    assert.equal(s.emulator.journal(seq).filter((e) => e.endpoint === 'imds').length, 0);
  });

  it('13: path scoping is per segment', async () => {
    await s.configureHost({ rules: { imds: grant('r13', { userName: 'nobody' }) } });
    assert.equal((await s.curl(url(`/metadata/instance?${V}`), N)).status, 200);
    assert.equal((await s.curl(url(`/metadata/identity/oauth2/token?${V}&resource=x`), N)).status, 403);
    assert.equal((await s.curl(url(`/metadata/instance-evil?${V}`), N)).status, 403);
    assert.equal((await s.curl(url(`/metadata/instancex?${V}`), N)).status, 403);
  });

  it('14: encoding tricks never reach the token path', async () => {
    const [h, p] = hp();
    const seq = seqNow();
    const targets = [
      '/metadata/instance/..%2Fidentity/oauth2/token',
      '/metadata/instance/..%2fidentity/oauth2/token',
      '/metadata/instance/..%252Fidentity/oauth2/token',
      '/metadata/instance%3F/../identity/oauth2/token',
      '/metadata/instance/./../identity/oauth2/token',
      '/metadata/instance/../identity/oauth2/token',
      '/metadata/instance//../../identity/oauth2/token',
      '/metadata/instance;x=1/../../metadata/identity/oauth2/token',
      '/METADATA/instance/../IDENTITY/oauth2/token',
      '/metadata/instance\\..\\identity/oauth2/token',
      '/metadata/instance/%C0%AF../identity/oauth2/token',
      '/metadata/instance/%00/../../identity/oauth2/token',
    ];
    for (const t of targets) {
      const req = Buffer.from(`GET ${t}?${V}&resource=x HTTP/1.1\r\nHost: ${h}\r\nMetadata: true\r\n\r\n`, 'latin1');
      const r = await s.run(PYTHON, [path.join(FIX, 'raw.py'), h, p], { ...N, input: req.toString('hex') });
      assert.match(r.stdout, /^(HTTP\/1\.1 4\d\d |closed)/, `${t}: ${r.stdout}`);
    }
    assert.equal(s.emulator.journal(seq).filter((e) => /token/i.test(e.rawTarget)).length, 0);
  });

  it('15: query constraints: match / missing / wrong / extra / duplicate conflicting', async () => {
    await s.configureHost({
      rules: { imds: grant('r15', { userName: 'nobody' }, '/metadata/instance', { 'api-version': '2021-02-01' }) },
    });
    const st = async (q: string) => (await s.curl(url(`/metadata/instance${q}`), N)).status;
    assert.equal(await st(`?${V}`), 200);
    assert.equal(await st(''), 403);
    assert.equal(await st('?api-version=2020-09-01'), 403);
    assert.equal(await st(`?${V}&format=json`), 200);
    assert.equal(await st(`?${V}&api-version=2020-09-01`), 403);
  });

  it('16, 17: executable identity (copies, bind mounts, exec after connect) is fixed at connect time', async () => {
    await s.configureHost({ rules: { imds: grant('r16', { exePath: '/usr/bin/curl' }) } });
    const u = url(`/metadata/instance?${V}`);
    const py = await s.run(PYTHON, [path.join(FIX, 'urllib_get.py'), u], N);
    assert.equal(py.stdout.trim(), '403');
    assert.equal((await s.curl(u, N)).status, 200);
    const copy = `/tmp/gpa-e2e-curl-${process.pid}`;
    copyFileSync('/usr/bin/curl', copy);
    try {
      const r = await s.run(copy, ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Metadata: true', u], N);
      assert.equal(r.stdout, '403');
      // Another binary bind-mounted over /usr/bin/curl in a private mount namespace.
      const bm = await s.run('unshare', [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        `mount --bind ${copy} /usr/bin/curl && exec /usr/bin/curl -s -o /dev/null -w '%{http_code}' -H 'Metadata: true' '${u}'`,
      ]);
      assert.equal(bm.stdout, '403', bm.stderr);
    } finally {
      rmSync(copy, { force: true });
    }
    // 17: the helper is the interpreter copied to a file named curl, so its comm ("curl") is the
    // comm of the binary it execs: only the kernel-captured executable tells them apart. Whether the
    // agent resolves the caller before the exec (exe = the copy) or after it (exe changed since the
    // connect), the decision is 403: deterministic, no retry.
    const [h, p] = hp();
    const seq = seqNow();
    const helperDir = mkdtempSync(path.join(tmpdir(), 'gpa-e2e-17-'));
    const helper = path.join(helperDir, 'curl');
    copyFileSync(PYTHON, helper);
    chmodSync(helperDir, 0o755);
    try {
      await s.run(
        helper,
        [path.join(FIX, 'exec_after_connect.py'), h, p, `/metadata/instance?${V}&probe=17`, '/usr/bin/curl'],
        N,
      );
    } finally {
      rmSync(helperDir, { recursive: true, force: true });
    }
    const logFile = path.join(s.logFolder, 'ProxyAgent.Connection.log');
    const records = () =>
      readFileSync(logFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes('probe=17'))
        .map((l) => JSON.parse(l) as { outcome: string; status: number; caller: { exePath: string | null } });
    const deadline = Date.now() + 5000;
    while (records().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const rec = records();
    assert.equal(rec.length, 1, JSON.stringify(rec));
    assert.equal(rec[0]!.outcome, 'deny');
    assert.equal(rec[0]!.status, 403);
    assert.notEqual(rec[0]!.caller.exePath, '/usr/bin/curl', 'identity fixed at connect time');
    const leaked = s.emulator.journal(seq).filter((e) => e.rawTarget.includes('probe=17'));
    assert.equal(leaked.length, 0, JSON.stringify({ leaked, rec }));
  });

  it('18: name matching: group-only identity; homoglyph and case-different user names', async () => {
    const u = url(`/metadata/instance?${V}`);
    await s.configureHost({ rules: { imds: grant('r18a', { groupName: 'nogroup' }) } });
    assert.equal((await s.curl(u, N)).status, 200);
    await s.configureHost({ rules: { imds: grant('r18b', { userName: 'n\u043ebody' }) } });
    assert.equal((await s.curl(u, N)).status, 403);
    await s.configureHost({ rules: { imds: grant('r18c', { userName: 'Nobody' }) } });
    assert.equal((await s.curl(u, N)).status, 403);
  });

  it('21: a policy change in flight: the slow request completes, new ones are denied, status names the new rule', async () => {
    await s.configureHost({ modes: { imds: 'enforce' }, rules: { imds: item('allow', 'r21-allow') } });
    const slowPath = `/metadata/instance?${V}&probe=21slow`;
    const fault = s.emulator.setFault({ endpoint: 'imds', path: slowPath, kind: 'delay', delayMs: 3000 });
    try {
      const seq = seqNow();
      const slow = s.curl(url(slowPath), N);
      const atHost = () => s.emulator.journal(seq).some((e) => e.rawTarget === slowPath);
      for (let i = 0; i < 100 && !atHost(); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(atHost(), 'the slow request reached the host under the allow rules');
      // The host switches to deny while it is still answering; configureHost returns after the
      // agent's next polls, so the new rules are in force from here on.
      await s.configureHost({ rules: { imds: item('deny', 'r21-deny') } });
      const denied = await s.curl(url(`/metadata/instance?${V}&probe=21new`), N);
      assert.equal(denied.status, 403);
      const inFlight = await slow;
      assert.equal(inFlight.status, 200, 'the in-flight request completes under the rules it was decided by');
      assert.match(inFlight.body, /"compute"/);
      const status = JSON.parse(readFileSync(path.join(s.logFolder, 'status.json'), 'utf8'));
      assert.equal(status.proxyAgentStatus.keyLatchStatus.states.imdsRuleId, 'r21-deny');
    } finally {
      s.emulator.clearFaults(fault);
    }
  });

  it('19: audit mode: a deny is forwarded and logged as audit-deny naming user, exe and path', async () => {
    imdsEnforce = false;
    await s.configureHost({ modes: { imds: 'audit' }, rules: { imds: item('deny', 'r19') } });
    const r = await s.curl(url(`/metadata/instance?${V}&probe=19`), N);
    assert.equal(r.status, 200);
    await new Promise((res) => setTimeout(res, 300));
    const log = readFileSync(path.join(s.logFolder, 'ProxyAgent.Connection.log'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('probe=19'))
      .map((l) => JSON.parse(l));
    assert.equal(log.length, 1);
    assert.equal(log[0].outcome, 'audit-deny');
    assert.equal(log[0].caller.userName, 'nobody');
    assert.equal(log[0].caller.exePath, '/usr/bin/curl');
    assert.equal(log[0].target, `/metadata/instance?${V}&probe=19`);
  });
});
