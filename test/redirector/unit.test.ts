// Pure parts of lib/redirector (no root, no kernel): address normalisation, mountinfo parsing,
// pid-namespace detection, rule validation.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addonStartOptions,
  inPidNamespace,
  normaliseAddress,
  parseCgroup2Mounts,
  RedirectorError,
  type StartHost,
  setRule,
} from '../../lib/redirector/index.js';

test('normaliseAddress folds v4-mapped addresses and drops zones', () => {
  assert.equal(normaliseAddress('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(normaliseAddress('::FFFF:169.254.169.254'), '169.254.169.254');
  assert.equal(normaliseAddress('127.0.0.1'), '127.0.0.1');
  assert.equal(normaliseAddress('::1'), '::1');
  assert.equal(normaliseAddress('fe80::1%lo'), 'fe80::1');
  assert.equal(normaliseAddress('::ffff:7f00:1'), '::ffff:7f00:1');
});

test('parseCgroup2Mounts prefers the mount of the hierarchy root', () => {
  const text = [
    '30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu',
    '40 25 0:27 /nested /mnt/nested rw - cgroup2 cgroup2 rw',
    '35 25 0:28 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate',
    '41 25 0:29 / /mnt/with\\040space rw - cgroup2 cgroup2 rw',
  ].join('\n');
  assert.deepEqual(parseCgroup2Mounts(text), [
    { root: '/', mountPoint: '/sys/fs/cgroup/unified' },
    { root: '/', mountPoint: '/mnt/with space' },
    { root: '/nested', mountPoint: '/mnt/nested' },
  ]);
  assert.deepEqual(parseCgroup2Mounts('30 25 0:26 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw'), []);
});

test('inPidNamespace reads NSpid', () => {
  assert.equal(inPidNamespace('Name:\tx\nNSpid:\t4242\n'), false);
  assert.equal(inPidNamespace('Name:\tx\nNSpid:\t4242\t7\n'), true);
  assert.equal(inPidNamespace('Name:\tx\n'), false);
});

test('setRule rejects bad literals, ports and mixed families before touching the kernel', () => {
  const bad = [
    { dst: 'metadata', dstPort: 80, proxy: '127.0.0.1', proxyPort: 3080 },
    { dst: '169.254.169.254', dstPort: 0, proxy: '127.0.0.1', proxyPort: 3080 },
    { dst: '169.254.169.254', dstPort: 80, proxy: '127.0.0.1', proxyPort: 70000 },
    { dst: '169.254.169.254', dstPort: 80, proxy: '::1', proxyPort: 3080 },
    { dst: '169.254.169.254', dstPort: 80, proxy: '10.0.0.4', proxyPort: 3080 },
    { dst: '::1', dstPort: 80, proxy: '::2', proxyPort: 3080 },
  ];
  for (const rule of bad) {
    assert.throws(
      () => setRule(rule),
      (e: unknown) => e instanceof RedirectorError && e.op === 'setRule',
    );
  }
  // sockops only looks for records on sockets connected to loopback
  assert.throws(
    () => setRule({ dst: '169.254.169.254', dstPort: 80, proxy: '10.0.0.4', proxyPort: 3080 }),
    /proxy '10\.0\.0\.4' is not a loopback address/,
  );
});

function fakeHost(over: Partial<StartHost>): StartHost {
  return {
    platform: 'linux',
    pid: 4242,
    cgroup2Root: () => '/sys/fs/cgroup',
    isCgroup2Dir: (d) => d.startsWith('/sys/fs/cgroup'),
    inPidNamespace: () => false,
    ownCgroupDir: () => '/sys/fs/cgroup/system.slice/gpa.service',
    cgroupId: () => 77n,
    objectPath: () => '/opt/gpa/redirect.bpf.o',
    ...over,
  };
}

test('addonStartOptions: Linux attaches to a cgroup v2 directory and exempts the agent by pid', () => {
  assert.deepEqual(addonStartOptions({}, fakeHost({})), {
    ok: {
      objectPath: '/opt/gpa/redirect.bpf.o',
      cgroupPath: '/sys/fs/cgroup',
      pinDir: '',
      connMapSize: 16384,
      exemptPid: 4242,
      exemptCgroupId: 0n,
    },
  });
  const bad = addonStartOptions({ cgroupPath: '/tmp' }, fakeHost({}));
  assert.ok('op' in bad && bad.op === 'open cgroup' && /not a cgroup v2 directory/.test(bad.message));
  const none = addonStartOptions({}, fakeHost({ cgroup2Root: () => undefined }));
  assert.ok('op' in none && none.op === 'open cgroup');
});

test('addonStartOptions: in a pid namespace the agent is exempted by its own cgroup, never a shared one', () => {
  const ns = addonStartOptions({ cgroupPath: '/sys/fs/cgroup/clients' }, fakeHost({ inPidNamespace: () => true }));
  assert.ok('ok' in ns && ns.ok.exemptPid === 0 && ns.ok.exemptCgroupId === 77n);
  const shared = addonStartOptions(
    { cgroupPath: '/sys/fs/cgroup/clients' },
    fakeHost({ inPidNamespace: () => true, ownCgroupDir: () => '/sys/fs/cgroup/clients' }),
  );
  assert.ok('op' in shared && shared.op === 'exempt');
});

test('addonStartOptions: Windows needs no cgroup (default compartment) and exempts the agent by pid', () => {
  const noCgroups = fakeHost({
    platform: 'win32',
    pid: 9000,
    cgroup2Root: () => undefined,
    isCgroup2Dir: () => false,
    inPidNamespace: () => {
      throw new Error('no pid namespaces on Windows');
    },
  });
  assert.deepEqual(addonStartOptions({ objectPath: 'C:\\gpa\\redirect_win.sys' }, noCgroups), {
    ok: {
      objectPath: 'C:\\gpa\\redirect_win.sys',
      cgroupPath: '',
      pinDir: '',
      connMapSize: 16384,
      exemptPid: 9000,
      exemptCgroupId: 0n,
    },
  });
  const limits = addonStartOptions({ connMapSize: 10 }, noCgroups);
  assert.ok('op' in limits && limits.op === 'start');
});
