import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { describe, it } from 'node:test';
import {
  ClaimsResolver,
  containerIdFromCgroup,
  currentComm,
  loopbackPeerUid,
  readExeIdentity,
  readExePath,
  readProcFacts,
  readStartTime,
  redactCmdline,
} from '../../lib/identity/index.js';

describe('command-line redaction', () => {
  const cases: [string, string, RegExp][] = [
    ['pwd=', 'mysql --host db pwd=hunter2 --x', /pwd=\*\*\*/],
    ['password=', 'app password=s3cr3t', /password=\*\*\*/],
    [
      'AccountKey=',
      'az DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc123==;EndpointSuffix=x',
      /AccountKey=\*\*\*;/,
    ],
    ['sig=', 'curl https://a.blob.core.windows.net/c?sv=1&sig=AbC%2Bdef&se=2', /sig=\*\*\*&se=2/],
    ['bearer', 'curl -H Authorization: Bearer abc.def.ghi', /Bearer \*\*\*/],
    ['JWT', 'tool eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_value', /tool \*\*\*$/],
    ['URL credentials', 'git clone https://user:tok3n@github.com/x', /https:\/\/\*\*\*@github\.com/],
    ['--password flag', 'psql --password topsecret -h h', /--password \*\*\* -h/],
    [
      'PEM key',
      'x -----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- y',
      /PRIVATE KEY \*\*\*-----\s+y/,
    ],
    ['storage key', `az storage --key ${'Ab1'.repeat(29)}== --x`, /--key \*\*\* --x/],
  ];
  for (const [name, input, want] of cases) {
    it(`masks ${name}`, () => {
      const out = redactCmdline(input);
      assert.match(out, want);
    });
  }

  it('keeps ordinary command lines and replaces control characters', () => {
    assert.equal(
      redactCmdline('/usr/bin/curl -H Metadata:true http://169.254.169.254/metadata/instance'),
      '/usr/bin/curl -H Metadata:true http://169.254.169.254/metadata/instance',
    );
    assert.equal(redactCmdline('evil\n{"forged":true}\r\u0007'), 'evil {"forged":true}  ');
    assert.ok(redactCmdline('a'.repeat(50_000)).length <= 1025);
  });

  it('takes time linear in the length, whatever the caller puts in its command line', () => {
    // Each ran quadratically in some expression before (`a.a.a…`: 65 ms for 16 KiB; linear is
    // under 1 ms). Any caller controls its command line, and redaction runs for each new process.
    const hostile = ['a.', 'a-', 'a+', 'eyJaaaa.', 'token ', 'bearer ', 'x://u:', 'A1a/'].map((u) =>
      u.repeat(Math.ceil(16384 / u.length)),
    );
    for (const h of hostile) redactCmdline(h); // warm up
    const t0 = performance.now();
    for (let i = 0; i < 3; i++) for (const h of hostile) redactCmdline(h);
    const ms = (performance.now() - t0) / 3;
    assert.ok(ms < 40, `eight 16 KiB hostile command lines took ${ms.toFixed(1)} ms`);
  });
});

describe('reading /proc', () => {
  it("keeps at most 16 KiB of a command line, however long the process's arguments are", async () => {
    // 1 MiB of arguments (one argument may be at most 128 KiB).
    const args = Array.from({ length: 16 }, () => 'x'.repeat(64 * 1024));
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 5000)', ...args], {
      stdio: 'ignore',
    });
    try {
      let facts = null;
      for (let i = 0; i < 100 && !(facts?.rawCmdline.includes('xxx') ?? false); i++) {
        await new Promise((r) => setTimeout(r, 20));
        facts = readProcFacts(child.pid!);
      }
      assert.ok(facts?.rawCmdline.includes('setTimeout'), 'the command line was read');
      assert.ok(facts!.rawCmdline.length <= 16 * 1024, `read ${facts!.rawCmdline.length} characters`);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

/** Waits until the child has exec'd (its comm is the new program's). */
async function execd(pid: number, comm: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    // The comm changes early in exec; exe and cmdline settle a little later.
    if (currentComm(pid, pid) === comm && readExePath(pid) !== null && readProcFacts(pid)?.rawCmdline) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`process ${pid} never became ${comm}`);
}

/** The facts the kernel records for a connect of `pid` (a `sleep` child), as the redirector hands them over. */
async function kernelFacts(pid: number, uid: number) {
  await execd(pid, 'sleep');
  const exe = readExeIdentity(pid)!;
  const startTimeNs = BigInt(readStartTime(pid)!) * 10_000_000n;
  return { pid, tid: pid, uid, gid: 0, comm: 'sleep', cgroupId: 5n, exeDev: exe.dev, exeIno: exe.ino, startTimeNs };
}

describe('claims resolver', () => {
  const lookups: number[] = [];
  const resolver = new ClaimsResolver({
    userInfo: (uid) => {
      lookups.push(uid);
      return uid === 4242
        ? {
            name: 'u4242',
            groups: [
              { gid: 4242, name: 'g4242' },
              { gid: 7, name: 'lp' },
            ],
          }
        : null;
    },
    groupName: (gid) => (gid === 0 ? 'root' : null),
  });

  it('resolves a live process: exe, basename, cmdline, NSS groups plus the kernel gid', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await execd(child.pid!, 'sleep');
      const c = resolver.resolve({ pid: child.pid!, tid: child.pid!, uid: 4242, gid: 0, comm: 'sleep', cgroupId: 5n });
      assert.match(c.exePath ?? '', /\/sleep$/);
      assert.equal(c.processName, 'sleep');
      assert.equal(c.cmdline, 'sleep 30');
      assert.equal(c.userName, 'u4242');
      assert.deepEqual(
        c.groups.map((g) => g.gid),
        [4242, 7, 0],
      );
      assert.equal(c.degraded, null);
      // A second connection from the same uid reuses the NSS answer.
      resolver.resolve({ pid: child.pid!, tid: child.pid!, uid: 4242, gid: 0, comm: 'sleep', cgroupId: 5n });
      assert.equal(lookups.filter((u) => u === 4242).length, 1);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('returns the same frozen claims for a repeated kernel-identified connect, new ones when any fact differs', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const facts = await kernelFacts(child.pid!, 4242);
      const { startTimeNs } = facts;
      const exe = { dev: facts.exeDev, ino: facts.exeIno };
      const a = resolver.resolve(facts);
      assert.equal(a.degraded, null);
      assert.match(a.exePath ?? '', /\/sleep$/);
      assert.equal(
        resolver.resolve({ ...facts, tid: facts.tid + 1 }),
        a,
        'same facts (tid is not a claim): same object',
      );
      assert.ok(Object.isFrozen(a) && Object.isFrozen(a.groups));
      for (const other of [{ uid: 1 }, { gid: 7 }, { cgroupId: 6n }, { comm: 'sleepy' }, { exeIno: exe.ino + 1n }]) {
        const b = resolver.resolve({ ...facts, ...other });
        assert.notEqual(
          b,
          a,
          JSON.stringify(other, (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
        );
      }
      // Another start time is another process (pid reused): checked against /proc, which disagrees.
      assert.equal(resolver.resolve({ ...facts, startTimeNs: startTimeNs + 10_000_000n }).degraded, 'exited');
      const c = resolver.resolve(facts);
      assert.deepEqual(c, a);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('drops the claims of processes not seen within their TTL as new ones arrive', async () => {
    const ttl = new ClaimsResolver({
      userInfo: () => ({ name: 'u', groups: [] }),
      groupName: () => null,
      processTtlMs: 40,
      userTtlMs: 40,
    });
    const children = [0, 1, 2].map(() => spawn('sleep', ['30'], { stdio: 'ignore' }));
    try {
      const facts = [];
      for (const child of children) facts.push(await kernelFacts(child.pid!, 100 + facts.length));
      ttl.resolve(facts[0]!);
      ttl.resolve(facts[1]!);
      assert.deepEqual(ttl.cacheSizes(), { users: 2, processes: 2, recent: 2 });
      await new Promise((r) => setTimeout(r, 80));
      // Both have expired: the next new process's insertions drop them.
      assert.equal(ttl.resolve(facts[2]!).degraded, null);
      assert.deepEqual(ttl.cacheSizes(), { users: 1, processes: 1, recent: 1 });
      // An expired process seen again is read afresh and cached again.
      assert.equal(ttl.resolve(facts[0]!).degraded, null);
      assert.deepEqual(ttl.cacheSizes(), { users: 2, processes: 2, recent: 2 });
    } finally {
      for (const c of children) c.kill('SIGKILL');
    }
  });

  it("does not trust the exe when the process exec'd after connecting (comm changed)", async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await execd(child.pid!, 'sleep');
      const c = resolver.resolve({ pid: child.pid!, tid: child.pid!, uid: 1, gid: 1, comm: 'python3', cgroupId: 5n });
      assert.equal(c.exePath, null);
      assert.equal(c.processName, 'python3');
      assert.equal(c.degraded, 'exec-after-connect');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('falls back to the kernel comm when the process is gone', async () => {
    const child = spawn('true', [], { stdio: 'ignore' });
    await new Promise((r) => child.once('exit', r));
    const c = resolver.resolve({ pid: child.pid!, tid: child.pid!, uid: 1, gid: 1, comm: 'true', cgroupId: 5n });
    assert.equal(c.exePath, null);
    assert.equal(c.processName, 'true');
    assert.equal(c.degraded, 'exited');
  });

  it('parses container ids from cgroup paths', () => {
    const id = 'a'.repeat(64);
    assert.equal(containerIdFromCgroup(`0::/system.slice/docker-${id}.scope\n`), id);
    assert.equal(containerIdFromCgroup('0::/user.slice/user-0.slice/session-1.scope\n'), null);
  });
});

describe('loopback peer uid', () => {
  it('finds the uid owning the client end of a direct connection', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const client = net.connect(port, '127.0.0.1');
    try {
      const s = await accepted;
      const uid = loopbackPeerUid(
        { address: s.remoteAddress!, port: s.remotePort! },
        { address: s.localAddress!, port: s.localPort! },
      );
      assert.equal(uid, process.getuid!());
      assert.equal(loopbackPeerUid({ address: '127.0.0.1', port: 1 }, { address: '127.0.0.1', port: port }), null);
    } finally {
      client.destroy();
      server.close();
    }
  });
});
