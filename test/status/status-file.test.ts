import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { buildStatusDocument, startStatusWriter, statusChangeKey, writeFileAtomic } from '../../lib/status/index.js';

const dir = mkdtempSync(path.join(tmpdir(), 'gpa-status-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const keys = (o: object) => Object.keys(o).sort();

test('status.json has exactly the fields host-protocol.md section 6 names', () => {
  const doc = buildStatusDocument({ version: '1.2.3', now: new Date('2025-04-23T12:00:00Z') });
  assert.deepEqual(keys(doc), ['failedAuthenticateSummary', 'proxyAgentStatus', 'proxyConnectionSummary', 'timestamp']);
  assert.deepEqual(keys(doc.proxyAgentStatus), [
    'ebpfProgramStatus',
    'keyLatchStatus',
    'proxyConnectionsCount',
    'proxyListenerStatus',
    'status',
    'telemetryLoggerStatus',
    'version',
  ]);
  assert.deepEqual(keys(doc.proxyAgentStatus.keyLatchStatus), ['message', 'states', 'status']);
  assert.deepEqual(keys(doc.proxyAgentStatus.keyLatchStatus.states), [
    'hostGARuleId',
    'imdsRuleId',
    'keyGuid',
    'keyIncarnationId',
    'secureChannelState',
    'wireServerRuleId',
  ]);
  for (const m of ['ebpfProgramStatus', 'proxyListenerStatus', 'telemetryLoggerStatus'] as const) {
    assert.deepEqual(keys(doc.proxyAgentStatus[m]), ['message', 'status']);
    assert.ok(['UNKNOWN', 'RUNNING', 'STOPPED'].includes(doc.proxyAgentStatus[m].status));
  }
  assert.equal(doc.timestamp, '2025-04-23T12:00:00.000Z');
  assert.equal(doc.proxyAgentStatus.status, 'UNKNOWN');
});

test('overall status: SUCCESS only when key, redirector and listener all run; ERROR when one stopped', () => {
  const running = { status: 'RUNNING' as const, message: 'ok' };
  const key = {
    secureChannelState: 'WireServer Enforce -  IMDS Audit - HostGA Enforce',
    guid: 'g-1',
    health: 'ok' as const,
    keyIncarnationId: 2,
    ruleIds: { imds: 'r-i', wireserver: 'r-w', hostga: null },
  };
  const ok = buildStatusDocument({ version: 'v', key, redirector: running, listener: running });
  assert.equal(ok.proxyAgentStatus.status, 'SUCCESS');
  assert.deepEqual(ok.proxyAgentStatus.keyLatchStatus.states, {
    secureChannelState: key.secureChannelState,
    keyGuid: 'g-1',
    wireServerRuleId: 'r-w',
    imdsRuleId: 'r-i',
    hostGARuleId: '',
    keyIncarnationId: '2',
  });
  const bad = buildStatusDocument({
    version: 'v',
    key,
    redirector: { status: 'STOPPED', message: 'x' },
    listener: running,
  });
  assert.equal(bad.proxyAgentStatus.status, 'ERROR');
  const degraded = buildStatusDocument({
    version: 'v',
    key: { ...key, health: 'degraded' },
    redirector: running,
    listener: running,
  });
  assert.equal(degraded.proxyAgentStatus.keyLatchStatus.status, 'STOPPED');
  assert.equal(degraded.proxyAgentStatus.status, 'ERROR');
});

test('atomic rewrite: a concurrent reader never sees a torn or empty file, and no temp files remain', () => {
  const file = path.join(dir, 'status.json');
  const big = (n: number) => JSON.stringify({ n, pad: 'x'.repeat(200_000 + n) });
  writeFileAtomic(file, big(0));
  for (let i = 1; i <= 50; i++) {
    writeFileAtomic(file, big(i));
    const seen = JSON.parse(readFileSync(file, 'utf8')) as { n: number };
    assert.equal(seen.n, i);
  }
  assert.deepEqual(readdirSync(dir), ['status.json']);
});

test('the writer writes at once, again each interval, and survives a failing write', async () => {
  const file = path.join(dir, 'periodic', 'status.json');
  let n = 0;
  const errors: unknown[] = [];
  const w = startStatusWriter({
    file,
    intervalMs: 20,
    collect: () => {
      n++;
      if (n === 2) throw new Error('collect failed once');
      return buildStatusDocument({ version: `v${n}` });
    },
    onError: (e) => errors.push(e),
  });
  try {
    assert.equal(
      (JSON.parse(readFileSync(file, 'utf8')) as { proxyAgentStatus: { version: string } }).proxyAgentStatus.version,
      'v1',
    );
    const deadline = Date.now() + 5000;
    while (n < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(n >= 4);
    assert.equal(errors.length, 1);
    const v = (JSON.parse(readFileSync(file, 'utf8')) as { proxyAgentStatus: { version: string } }).proxyAgentStatus
      .version;
    assert.notEqual(v, 'v1');
  } finally {
    w.stop();
  }
});

test('statusChangeKey: changes with modes, readiness and module state; not with time, counts or summaries', () => {
  const running = { status: 'RUNNING' as const, message: 'ok' };
  const key = (secureChannelState: string) => ({
    secureChannelState,
    guid: 'g-1',
    health: 'ok' as const,
    keyIncarnationId: 1,
    ruleIds: { imds: 'r-i', wireserver: null, hostga: null },
  });
  const doc = (over: Partial<Parameters<typeof buildStatusDocument>[0]> = {}) =>
    buildStatusDocument({
      version: 'v',
      key: key('WireServer Audit - IMDS Audit'),
      redirector: running,
      listener: running,
      ...over,
    });
  const base = statusChangeKey(doc());
  const row = { userName: 'u', ip: '127.0.0.1', port: 80, processCmdLine: 'curl', responseStatus: '200', count: 3 };
  assert.equal(
    statusChangeKey(
      doc({ now: new Date(0), connectionsCount: 99, connectionSummary: [row], failedAuthenticateSummary: [row] }),
    ),
    base,
  );
  assert.notEqual(statusChangeKey(doc({ key: key('WireServer Enforce - IMDS Audit') })), base);
  assert.notEqual(
    statusChangeKey(doc({ key: { ...key('WireServer Audit - IMDS Audit'), ruleIds: { imds: 'r-2' } } })),
    base,
  );
  assert.notEqual(statusChangeKey(doc({ listener: { status: 'STOPPED', message: 'agent stopping' } })), base);
  assert.notEqual(statusChangeKey(doc({ redirector: { status: 'RUNNING', message: 'other programs' } })), base);
});
