import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import {
  AUDIT_LOG_NAME,
  AuditBatcher,
  AuditLog,
  ConnectionSummaries,
  formatAuditLine,
  MAX_SUMMARY_ROWS,
  summaryOf,
} from '../../lib/audit/index.js';
import type { RequestAuditRecord } from '../../lib/proxy/index.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'gpa-audit-'));
  dirs.push(d);
  return d;
}

function rec(i: number, over: Partial<RequestAuditRecord> = {}): RequestAuditRecord {
  return {
    timeMs: Date.now(),
    connectionId: i,
    requestId: 1,
    caller: {
      pid: 100 + i,
      uid: 1000,
      gid: 1000,
      userName: 'alice',
      groups: [{ gid: 1000, name: 'alice' }],
      exePath: '/usr/bin/curl',
      processName: 'curl',
      cmdline: 'curl -H Metadata:true http://169.254.169.254/metadata/instance',
      cgroupId: 77n,
    },
    comm: 'curl',
    origDst: '169.254.169.254:80',
    endpoint: 'imds',
    method: 'GET',
    target: '/metadata/instance?api-version=2021-02-01',
    outcome: 'allow',
    code: 'ALLOW',
    ruleId: null,
    privilege: null,
    identity: null,
    mode: 'enforce',
    policyEpoch: 3,
    status: 200,
    elapsedMs: 0.4567,
    upstreamMs: 0.2,
    signed: true,
    ...over,
  };
}

function lines(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
}

describe('audit log', () => {
  it('writes one JSON line per record, and loses none of 20,000 under a burst', async () => {
    const log = new AuditLog({ folder: tmp() });
    const b = new AuditBatcher((batch) => log.append(batch));
    for (let i = 0; i < 20_000; i++) assert.equal(b.record(rec(i)), 'written');
    b.flush();
    await log.close();
    const all = lines(log.file);
    assert.equal(all.length, 20_000);
    assert.equal(log.written, 20_000);
    assert.equal(log.dropped, 0);
    const first = JSON.parse(all[0]!);
    assert.equal(first.caller.userName, 'alice');
    assert.equal(first.caller.cgroupId, '77');
    assert.equal(first.outcome, 'allow');
    assert.match(first.time, /^\d{4}-\d\d-\d\dT/);
    assert.equal((statSync(log.file).mode & 0o077) === 0, true, 'log file is not readable by others');
  });

  it('formats later batches into the buffers of written ones, with no stale bytes', async () => {
    const log = new AuditLog({ folder: tmp() });
    const seen: ArrayBuffer[] = [];
    const b = new AuditBatcher((batch) => {
      seen.push(batch.bytes.buffer as ArrayBuffer);
      log.append(batch, (buffer) => b.recycle(buffer));
    });
    // Wave 1: 300 records. Wave 2: 100 longer ones (fits the same buffer). Wave 3: 400 with 1 KiB
    // targets (about 640 KiB: the batch outgrows its buffer and moves to a bigger one).
    for (let i = 0; i < 300; i++) b.record(rec(i));
    b.flush();
    await log.flush();
    assert.equal(b.spareCount, 1, 'the written buffer came back');
    for (let i = 0; i < 100; i++)
      b.record(rec(1000 + i, { target: `/metadata/instance?api-version=2021-02-01&n=${i}` }));
    b.flush();
    await log.flush();
    assert.equal(seen[1], seen[0], "the second batch reused the first one's buffer");
    const long = `/metadata/instance/${'x'.repeat(980)}`;
    for (let i = 0; i < 400; i++) b.record(rec(2000 + i, { target: long }));
    b.flush();
    await log.close();
    assert.notEqual(seen[2], seen[0], 'a buffer too small is left for a bigger one');
    assert.ok(seen[2]!.byteLength >= 400 * 1024, 'grown to hold the batch');
    const all = lines(log.file).map((l) => JSON.parse(l) as { connectionId: number; target: string });
    assert.equal(all.length, 800);
    assert.deepEqual(
      all.map((r) => r.connectionId),
      [
        ...Array.from({ length: 300 }, (_, i) => i),
        ...Array.from({ length: 100 }, (_, i) => 1000 + i),
        ...Array.from({ length: 400 }, (_, i) => 2000 + i),
      ],
    );
    assert.equal(all[399]!.target, '/metadata/instance?api-version=2021-02-01&n=99');
    assert.equal(log.written, 800);
    assert.equal(all[799]!.target, long);
  });

  it('writes each line when its record comes, hands a full batch over at once and the rest after flushMs', async () => {
    const batches: { records: number; lines: string[] }[] = [];
    const b = new AuditBatcher(
      (batch) =>
        batches.push({
          records: batch.records,
          lines: Buffer.from(batch.bytes)
            .toString('latin1')
            .split('\n')
            .filter((l) => l !== ''),
        }),
      { batchSize: 100, flushMs: 20 },
    );
    // The line is made from the record as it was when recorded: nothing keeps the record itself.
    const first = rec(0);
    b.record(first);
    first.target = '/changed/afterwards';
    first.status = 500;
    for (let i = 1; i < 99; i++) b.record(rec(i));
    assert.equal(batches.length, 0);
    b.record(rec(99)); // the hundredth: full, handed over in this call
    assert.deepEqual(
      batches.map((x) => x.records),
      [100],
    );
    const line0 = JSON.parse(batches[0]!.lines[0]!) as { target: string; status: number };
    assert.equal(line0.target, '/metadata/instance?api-version=2021-02-01');
    assert.equal(line0.status, 200);
    for (let i = 100; i < 110; i++) b.record(rec(i));
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(
      batches.map((x) => x.records),
      [100, 10],
    );
    const ids = batches.flatMap((x) => x.lines).map((l) => (JSON.parse(l) as { connectionId: number }).connectionId);
    assert.deepEqual(
      ids,
      Array.from({ length: 110 }, (_, i) => i),
    );
  });

  it('keeps at most four spare buffers, the largest, and none over 4 MiB', () => {
    const b = new AuditBatcher(() => {});
    for (const kib of [64, 128, 32, 256, 512, 16]) b.recycle(new ArrayBuffer(kib * 1024));
    assert.equal(b.spareCount, 4);
    b.recycle(new ArrayBuffer(5 * 1024 * 1024));
    b.recycle(new ArrayBuffer(0));
    assert.equal(b.spareCount, 4);
    // The four kept are 512, 256, 128 and 64 KiB: a batch needing 300 KiB takes the 512 KiB one.
    const seen: number[] = [];
    const c = new AuditBatcher((batch) => seen.push(batch.bytes.buffer.byteLength));
    for (const kib of [64, 128, 32, 256, 512, 16]) c.recycle(new ArrayBuffer(kib * 1024));
    for (let i = 0; i < 400; i++) c.record(rec(i)); // 400 x 768 bytes = 300 KiB asked for
    c.flush();
    assert.deepEqual(seen, [512 * 1024]);
  });

  it("hands a batch's buffer back when its records are dropped as well as when written", async () => {
    const log = new AuditLog({ folder: tmp(), maxBacklogBytes: 1 });
    const back: ArrayBuffer[] = [];
    const b = new AuditBatcher((batch) => log.append(batch, (buffer) => back.push(buffer)));
    for (let i = 0; i < 10; i++) b.record(rec(i));
    b.flush();
    await log.close();
    assert.equal(log.dropped, 10);
    assert.equal(back.length, 1);
  });

  it('a process name holding a newline and fake JSON cannot forge a record', async () => {
    const log = new AuditLog({ folder: tmp() });
    const b = new AuditBatcher((batch) => log.append(batch));
    const evil = 'x\n{"time":"2020-01-01T00:00:00Z","method":"GET","target":"/forged","outcome":"allow"}\r\n';
    const r = rec(1, { comm: evil });
    r.caller!.processName = evil;
    r.caller!.exePath = `/tmp/${evil}`;
    b.record(r);
    b.flush();
    await log.close();
    const all = lines(log.file);
    assert.equal(all.length, 1);
    const parsed = JSON.parse(all[0]!);
    assert.equal(parsed.caller.processName, evil);
    assert.equal(parsed.target, '/metadata/instance?api-version=2021-02-01');
  });

  it('writes ASCII lines: non-ASCII names and targets are \\u-escaped and read back unchanged', async () => {
    const log = new AuditLog({ folder: tmp() });
    const b = new AuditBatcher((batch) => log.append(batch));
    const name = 'jos\u00e9-\u65e5\u672c-\u{1f600}';
    const r = rec(1, { comm: name, target: '/metadata/instance?q=\u00e9' });
    r.caller!.userName = name;
    r.caller!.exePath = `/opt/${name}/bin`;
    b.record(r);
    // The same claims object again with another destination: the cached connection piece must not leak.
    b.record({ ...r, origDst: '168.63.129.16:80', endpoint: 'wireserver', requestId: 2 });
    b.flush();
    await log.close();
    const raw = readFileSync(log.file);
    assert.ok(
      raw.every((byte) => byte < 0x80),
      'every byte is ASCII',
    );
    const [first, second] = lines(log.file).map((l) => JSON.parse(l));
    assert.equal(first.caller.userName, name);
    assert.equal(first.caller.exePath, `/opt/${name}/bin`);
    assert.equal(first.comm, name);
    assert.equal(first.target, '/metadata/instance?q=\u00e9');
    assert.equal(first.origDst, '169.254.169.254:80');
    assert.equal(second.origDst, '168.63.129.16:80');
    assert.equal(second.endpoint, 'wireserver');
    assert.equal(second.requestId, 2);
  });

  it('keeps each decision and status in its own line when one caller alternates between them', async () => {
    const log = new AuditLog({ folder: tmp() });
    const b = new AuditBatcher((batch) => log.append(batch));
    const base = rec(1);
    const kinds = [
      { outcome: 'allow', code: 'ALLOW', ruleId: 'r1', status: 200 },
      { outcome: 'deny', code: 'DENY', ruleId: 'r2', status: 403 },
      { outcome: 'audit-deny', code: 'AUDIT', ruleId: null, status: 200 },
    ] as const;
    for (let i = 0; i < 30; i++) b.record({ ...base, ...kinds[i % 3]!, requestId: i });
    b.flush();
    await log.close();
    const all = lines(log.file).map((l) => JSON.parse(l));
    assert.equal(all.length, 30);
    for (const [i, l] of all.entries()) {
      const k = kinds[i % 3]!;
      assert.deepEqual(
        [l.requestId, l.outcome, l.code, l.ruleId, l.status],
        [i, k.outcome, k.code, k.ruleId, k.status],
      );
    }
    // 10 of each; the failed table holds the deny and audit-deny rows only.
    const rows = log.summaries.connectionSummary();
    assert.deepEqual(rows.map((x) => [x.responseStatus, x.count]).sort(), [
      ['200', 20],
      ['403', 10],
    ]);
    const failed = log.summaries.failedAuthenticateSummary();
    assert.deepEqual(failed.map((x) => [x.responseStatus, x.count]).sort(), [
      ['200', 10],
      ['403', 10],
    ]);
  });

  it('writes times and numbers exactly as JSON would: ms rounded to 3 places, null when not finite', () => {
    // As JSON.stringify then JSON.parse give it back (-0 is written 0).
    const round3 = (n: number) => JSON.parse(JSON.stringify(Math.round(n * 1000) / 1000)) as number;
    const durations = [0, -0, 0.0004, 0.0005, 0.0015, 0.1, 1.2345, 12.3, 999.9995, 1e9 + 0.5, 2.5e-7, -1, 7];
    for (let i = 0; i < 2000; i++) durations.push(Math.random() * 10 ** Math.floor(Math.random() * 8));
    const times = [0, 999, 1000, -1, 1.5, Date.UTC(2026, 10, 24, 23, 59, 59, 7), 253402300799999, 253402300800000];
    for (let i = 0; i < 200; i++) times.push(Date.now() + Math.floor(Math.random() * 1e9));
    for (const [i, ms] of durations.entries()) {
      const timeMs = times[i % times.length]!;
      const id = [0, 9, 10, 12345, 2 ** 53, -3, 1.5][i % 7]!;
      const line = formatAuditLine(
        rec(id, { timeMs, elapsedMs: ms, upstreamMs: i % 3 === 0 ? null : ms, requestId: i }),
      );
      assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'));
      const r = JSON.parse(line) as Record<string, unknown>;
      assert.equal(r.time, new Date(timeMs).toISOString(), `time ${timeMs}`);
      assert.equal(r.connectionId, id);
      assert.equal(r.requestId, i);
      assert.equal(r.elapsedMs, round3(ms), `elapsed ${ms}`);
      // The text itself, not only its value: what JSON.stringify writes for the rounded number.
      assert.ok(line.includes(`"elapsedMs":${JSON.stringify(round3(ms))},`), `${ms} in ${line}`);
      assert.equal(r.upstreamMs, i % 3 === 0 ? null : round3(ms));
    }
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const r = JSON.parse(formatAuditLine(rec(1, { elapsedMs: bad, status: bad }))) as Record<string, unknown>;
      assert.equal(r.elapsedMs, null);
      assert.equal(r.status, null);
    }
  });

  it('redacts secrets in the query of a logged target', async () => {
    const log = new AuditLog({ folder: tmp() });
    const b = new AuditBatcher((batch) => log.append(batch));
    b.record(rec(1, { target: '/machine?comp=x&sig=SECRETSIG&password=hunter2' }));
    b.flush();
    await log.close();
    const text = readFileSync(log.file, 'utf8');
    assert.doesNotMatch(text, /SECRETSIG|hunter2/);
  });

  it('rotates by size and keeps a bounded number of files', async () => {
    const folder = tmp();
    const log = new AuditLog({ folder, maxBytes: 16 * 1024, maxFiles: 3 });
    const b = new AuditBatcher((batch) => log.append(batch), { batchSize: 10 });
    for (let i = 0; i < 2000; i++) {
      b.record(rec(i));
      if (i % 10 === 9) b.flush();
    }
    b.flush();
    await log.close();
    const files = readdirSync(folder)
      .filter((f) => f.startsWith(AUDIT_LOG_NAME))
      .sort();
    assert.deepEqual(files, [AUDIT_LOG_NAME, `${AUDIT_LOG_NAME}.1`, `${AUDIT_LOG_NAME}.2`, `${AUDIT_LOG_NAME}.3`]);
    for (const f of files) assert.ok(statSync(path.join(folder, f)).size <= 16 * 1024);
    // The newest rotated file continues where the current one starts: no record is torn.
    for (const f of files) for (const l of lines(path.join(folder, f))) JSON.parse(l);
  });

  it('drops and counts records when the queue is full, instead of growing', () => {
    const batches: number[] = [];
    const b = new AuditBatcher((batch) => batches.push(batch.dropped), { maxQueue: 10, batchSize: 1000 });
    let dropped = 0;
    for (let i = 0; i < 25; i++) if (b.record(rec(i)) === 'dropped') dropped++;
    assert.equal(dropped, 15);
    b.flush();
    assert.deepEqual(batches, [15]);
  });

  it('reports an unwritable folder without throwing', async () => {
    const file = path.join(tmp(), 'not-a-dir');
    await import('node:fs/promises').then((f) => f.writeFile(file, 'x'));
    const log = new AuditLog({ folder: file });
    const b = new AuditBatcher((batch) => log.append(batch));
    b.record(rec(1));
    b.flush();
    await log.close();
    assert.equal(log.dropped, 1);
    assert.match(log.lastError ?? '', /logFolder/);
  });
});

describe('connection summaries', () => {
  it('counts by user/destination/exe/cmdline/status in 15-minute buckets kept 4 hours, failures separately', () => {
    let now = Date.UTC(2025, 0, 1, 0, 0, 0);
    const s = new ConnectionSummaries(() => now);
    const ok = summaryOf(rec(1));
    const denied = summaryOf(rec(2, { outcome: 'deny', status: 403 }));
    s.add([
      [ok.key, ok.entry, 3, ok.failed],
      [denied.key, denied.entry, 1, denied.failed],
    ]);
    now += 15 * 60 * 1000;
    s.add([[ok.key, ok.entry, 2, ok.failed]]);
    assert.deepEqual(
      s.connectionSummary().map((e) => [e.responseStatus, e.count]),
      [
        ['200', 5],
        ['403', 1],
      ],
    );
    assert.deepEqual(
      s.failedAuthenticateSummary().map((e) => [e.userName, e.ip, e.port, e.processFullPath, e.count]),
      [['alice', '169.254.169.254', 80, '/usr/bin/curl', 1]],
    );
    assert.equal(s.bucketStarts().length, 2);
    now += 4 * 60 * 60 * 1000;
    assert.deepEqual(s.connectionSummary(), []);
    assert.equal(s.bucketStarts().length, 0);
  });

  it('stays bounded whatever keys callers make: per bucket, and in what status.json gets', () => {
    let now = Date.UTC(2025, 0, 1, 0, 0, 0);
    const s = new ConnectionSummaries(() => now);
    // A forking caller rewriting its command line: a new key per request, for two hours.
    for (let bucket = 0; bucket < 8; bucket++) {
      const deltas: Parameters<ConnectionSummaries['add']>[0] = [];
      for (let i = 0; i < 3000; i++) {
        const r = summaryOf(rec(i, { outcome: 'deny', status: 403 }));
        deltas.push([`${r.key}-${bucket}-${i}`, { ...r.entry, processCmdLine: `x ${bucket} ${i}` }, 1, true]);
      }
      s.add(deltas);
      now += 15 * 60 * 1000;
    }
    for (const rows of [s.connectionSummary(), s.failedAuthenticateSummary()]) {
      assert.equal(rows.length, MAX_SUMMARY_ROWS);
      assert.equal(rows.at(-1)!.userName, '(other)');
      assert.equal(
        rows.reduce((n, r) => n + r.count, 0),
        8 * 3000,
        'every request is still counted',
      );
    }
  });
});
