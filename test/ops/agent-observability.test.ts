/**
 * What the agent in this process ("redirect": false, against the in-process host emulator) reports
 * about its own failures: a data-plane worker that dies and is restarted takes none of the metrics'
 * totals with it, and audit records the disk refuses are counted as dropped, in the metrics, in
 * status.json and in the log, until writes work again.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Agent } from '../../lib/agent/index.js';
import { AUDIT_LOG_NAME } from '../../lib/audit/index.js';
import { type Emulator, startEmulator } from '../../lib/emulator/index.js';
import type { StatusDocument } from '../../lib/status/index.js';
import { parseExposition, series } from '../metrics/parse-exposition.js';
import { inProcessAgentConfig } from './agent-fixture.js';

const dir = mkdtempSync(path.join(tmpdir(), 'gpa-agent-observability-'));
const logFolder = path.join(dir, 'log');
let emulator: Emulator;
let agent: Agent;
const logged: string[] = [];

function get(port: number, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    r.on('error', reject);
  });
}

/** Requests straight to the listener: not redirected, so each is answered 421 and audited. */
async function unattributed(n: number): Promise<void> {
  for (let i = 0; i < n; i++) assert.equal((await get(agent.status.listenPort, '/metadata/instance')).status, 421);
}

async function scrape(): Promise<Map<string, number>> {
  const r = await get(agent.metricsServer!.port, '/metrics');
  assert.equal(r.status, 200);
  return parseExposition(r.body);
}

const misses = (m: Map<string, number>) =>
  series(m, 'gpa_requests_total', { endpoint: 'unknown', decision: 'error', status: '421' }) ?? 0;
const statusDoc = (): StatusDocument =>
  JSON.parse(readFileSync(path.join(logFolder, 'status.json'), 'utf8')) as StatusDocument;

async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  emulator = await startEmulator({ control: null, settings: { enabled: false } });
  const config = inProcessAgentConfig(emulator, dir, {
    workers: 2,
    clientSockets: 'node',
    metrics: { address: '127.0.0.1', port: 0 },
  });
  agent = new Agent(config, (level, message) => logged.push(`${level} ${message}`));
  await agent.start();
});

after(async () => {
  await agent?.stop();
  await emulator?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a worker that dies takes none of the totals with it, and its replacement is counted', async () => {
  await unattributed(20);
  const before = misses(await scrape());
  assert.ok(before >= 20, `counted ${before}`);
  const old = agent.workers.workers[0]!;
  await old.terminate();
  await until('worker 0 was not restarted', () => {
    const w = agent.workers.workers[0];
    return w !== null && w !== undefined && w !== old;
  });
  const t0 = performance.now();
  const afterRestart = await scrape();
  assert.ok(performance.now() - t0 < 900, 'the scrape does not wait for the dead worker');
  assert.equal(misses(afterRestart), before, 'no total went back');
  // Both workers serve again (connections spread over them by the kernel); every request counts.
  await unattributed(20);
  assert.equal(misses(await scrape()), before + 20);
  assert.ok(logged.some((l) => /^error data-plane worker 0 exited/.test(l)));
});

test('audit records the disk refuses are dropped, and said so in metrics, status.json and the log', async () => {
  // Every record of the requests so far on disk: the workers hand batches over every 25 ms.
  await new Promise((r) => setTimeout(r, 250));
  await agent.audit.flush();
  const audit = (m: Map<string, number>, result: string) => series(m, 'gpa_audit_records_total', { result }) ?? 0;
  const m0 = await scrape();
  assert.ok(audit(m0, 'written') > 0, 'records written before the failure are counted as written');
  // The log file's name taken by a folder: the next open fails (as a full or broken disk would).
  const file = path.join(logFolder, AUDIT_LOG_NAME);
  rmSync(file, { force: true });
  await agent.audit.close(); // the next batch reopens the file by name
  mkdirSync(file);
  await unattributed(5);
  await until('the failed write was not counted', async () => audit(await scrape(), 'dropped') >= 5);
  const m1 = await scrape();
  assert.equal(audit(m1, 'written'), audit(m0, 'written'), 'nothing more was written');
  await until('status.json does not say the audit log is failing', () => {
    return statusDoc().proxyAgentStatus.telemetryLoggerStatus.status === 'STOPPED';
  });
  assert.match(statusDoc().proxyAgentStatus.telemetryLoggerStatus.message, /cannot write .*EISDIR/);
  assert.ok(logged.some((l) => /^error audit log write failed: cannot write/.test(l)));

  rmSync(file, { recursive: true });
  await unattributed(3);
  await until(
    'writing again was not counted',
    async () => audit(await scrape(), 'written') >= audit(m1, 'written') + 3,
  );
  await until('status.json still says the audit log is failing', () => {
    return statusDoc().proxyAgentStatus.telemetryLoggerStatus.status === 'RUNNING';
  });
  assert.ok(logged.includes('info audit log writes work again'));
  assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 3, 'the records after the failure are on disk');
});

test('an attribution miss is a 421, not a local path asked over a direct connection', async () => {
  const missTotal = async () => series(await scrape(), 'gpa_attribution_misses_total') ?? 0;
  const before = await missTotal();
  const provision = await new Promise<number>((resolve, reject) => {
    const r = http.get(
      {
        host: '127.0.0.1',
        port: agent.status.listenPort,
        path: '/provision',
        headers: { Metadata: 'true' },
        agent: false,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    r.on('error', reject);
  });
  assert.equal(provision, 200);
  assert.equal(await missTotal(), before, '/provision is not a miss');
  await unattributed(2);
  assert.equal(await missTotal(), before + 2);
});
