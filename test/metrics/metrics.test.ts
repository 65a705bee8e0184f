import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import {
  type AgentMetrics,
  createAgentMetrics,
  isLoopbackAddress,
  type MetricsServer,
  type RequestDoneRecord,
  startMetricsServer,
} from '../../lib/metrics/index.js';
import { parseExposition, series } from './parse-exposition.js';

const workerFile = new URL('./fixtures/metrics-worker.js', import.meta.url);

async function startWorker(index: number): Promise<Worker> {
  const w = new Worker(workerFile, { workerData: { index }, execArgv: [] });
  await waitFor(w, 'ready');
  return w;
}

function waitFor(w: Worker, type: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: { type?: string }) => {
      if (m?.type === type) {
        w.off('message', onMsg);
        w.off('error', reject);
        resolve(m as Record<string, unknown>);
      }
    };
    w.on('message', onMsg);
    w.once('error', reject);
  });
}

async function waitForReply(w: Worker, msg: object, type: string): Promise<Record<string, unknown>> {
  const reply = waitFor(w, type);
  w.postMessage(msg);
  return reply;
}

async function record(w: Worker, records: RequestDoneRecord[]): Promise<void> {
  const done = waitFor(w, 'recorded');
  w.postMessage({ type: 'record', records });
  await done;
}

async function scrape(server: MetricsServer): Promise<Map<string, number>> {
  const res = await fetch(server.url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  return parseExposition(await res.text());
}

const allowImds = (ms: number): RequestDoneRecord => ({
  endpoint: 'imds',
  outcome: 'allow',
  status: 200,
  attributed: true,
  addedSeconds: ms / 1000,
  upstreamSeconds: 0.002,
  audit: 'written',
});

describe('metrics across worker threads', () => {
  let metrics: AgentMetrics;
  let server: MetricsServer;
  const workers: Worker[] = [];

  before(async () => {
    metrics = createAgentMetrics({ workerTimeoutMs: 2000 });
    workers.push(await startWorker(0), await startWorker(1));
    metrics.setWorkers(workers);
    server = await startMetricsServer({ host: '127.0.0.1', port: 0, gather: () => metrics.gather() });
  });

  after(async () => {
    await server?.close();
    metrics?.close();
    await Promise.all(workers.map((w) => w.terminate()));
  });

  test('a scrape after traffic sums each worker’s counters and histograms', async () => {
    const before = await scrape(server);
    assert.equal(
      series(before, 'gpa_requests_total', { endpoint: 'imds', decision: 'allow', status: '200' }),
      undefined,
    );

    await record(workers[0]!, [allowImds(0.1), allowImds(0.3), allowImds(2)]);
    await record(workers[1]!, [
      allowImds(0.2),
      {
        endpoint: 'wireserver',
        outcome: 'deny',
        status: 403,
        code: 'root_required',
        attributed: true,
        addedSeconds: 0.0001,
      },
      {
        endpoint: 'imds',
        outcome: 'audit-deny',
        status: 200,
        code: 'default_deny',
        upstreamSeconds: 0.01,
        audit: 'dropped',
      },
      { status: 421, attributed: false },
      { endpoint: 'hostga', outcome: 'allow', status: 502, upstreamError: 'timeout' },
    ]);
    const m = await scrape(server);

    assert.equal(series(m, 'gpa_requests_total', { endpoint: 'imds', decision: 'allow', status: '200' }), 4);
    assert.equal(series(m, 'gpa_requests_total', { endpoint: 'wireserver', decision: 'deny', status: '403' }), 1);
    assert.equal(series(m, 'gpa_requests_total', { endpoint: 'unknown', decision: 'error', status: '421' }), 1);
    assert.equal(series(m, 'gpa_denials_total', { endpoint: 'wireserver', reason: 'root_required' }), 1);
    assert.equal(series(m, 'gpa_denials_total', { endpoint: 'imds', reason: 'default_deny' }), 1);
    assert.equal(series(m, 'gpa_attribution_misses_total'), 1);
    assert.equal(series(m, 'gpa_upstream_errors_total', { endpoint: 'hostga', kind: 'timeout' }), 1);
    assert.equal(series(m, 'gpa_upstream_errors_total', { endpoint: 'hostga', kind: 'error' }), 0);
    // The workers' records say whether their audit record was queued; only the writer knows more.
    assert.equal(series(m, 'gpa_audit_records_total', { result: 'written' }), 0);
    assert.equal(series(m, 'gpa_audit_records_total', { result: 'dropped' }), 0);

    // Added latency: 0.1, 0.2, 0.3 ms fall at or below 0.5 ms; 2 ms does not.
    const h = { endpoint: 'imds', decision: 'allow' };
    assert.equal(series(m, 'gpa_request_added_latency_seconds_count', h), 4);
    assert.equal(series(m, 'gpa_request_added_latency_seconds_bucket', { ...h, le: '0.0005' }), 3);
    assert.equal(series(m, 'gpa_request_added_latency_seconds_bucket', { ...h, le: '+Inf' }), 4);
    assert.ok(Math.abs(series(m, 'gpa_request_added_latency_seconds_sum', h)! - 0.0026) < 1e-9);
    assert.equal(series(m, 'gpa_upstream_latency_seconds_count', h), 4);
    assert.equal(series(m, 'gpa_upstream_latency_seconds_count', { endpoint: 'imds', decision: 'audit-deny' }), 1);

    // A second scrape with no new traffic shows the same totals (no double counting across scrapes).
    const again = await scrape(server);
    assert.equal(series(again, 'gpa_requests_total', { endpoint: 'imds', decision: 'allow', status: '200' }), 4);
  });

  test('audit records are counted from the audit log writer, as it wrote or dropped them', async () => {
    let totals = { written: 7, dropped: 2 };
    metrics.setAuditSource(() => totals);
    let m = await scrape(server);
    assert.equal(series(m, 'gpa_audit_records_total', { result: 'written' }), 7);
    assert.equal(series(m, 'gpa_audit_records_total', { result: 'dropped' }), 2);
    totals = { written: 9, dropped: 5 };
    m = await scrape(server);
    assert.equal(series(m, 'gpa_audit_records_total', { result: 'written' }), 9);
    assert.equal(series(m, 'gpa_audit_records_total', { result: 'dropped' }), 5);
  });

  test('label values stay within the fixed vocabularies', async () => {
    await record(workers[0]!, [
      { endpoint: 'evil.example/../x', outcome: 'maybe', status: 299, code: 'user alice said hi' },
      { endpoint: 'imds', outcome: 'deny', status: 403, code: '/home/alice/.ssh/id_rsa' },
    ]);
    const res = await fetch(server.url);
    const text = await res.text();
    assert.doesNotMatch(text, /alice|evil\.example|maybe/);
    const m = parseExposition(text);
    assert.equal(series(m, 'gpa_requests_total', { endpoint: 'unknown', decision: 'error', status: '2xx' }), 1);
    assert.equal(series(m, 'gpa_denials_total', { endpoint: 'imds', reason: 'other' }), 1);
  });

  test('each thread reports its own event-loop busy time; a stalled loop shows up', async () => {
    const before = await scrape(server);
    const busy = (m: typeof before, thread: string) => series(m, 'gpa_event_loop_busy_seconds_total', { thread });
    const w1Before = busy(before, 'worker-1') ?? Number.NaN;
    const w0Before = busy(before, 'worker-0') ?? Number.NaN;
    const blocked = waitFor(workers[1]!, 'blocked');
    workers[1]!.postMessage({ type: 'block', blockMs: 300 });
    await blocked;
    const m = await scrape(server);
    const w1 = (busy(m, 'worker-1') ?? Number.NaN) - w1Before;
    const w0 = (busy(m, 'worker-0') ?? Number.NaN) - w0Before;
    assert.ok(w1 >= 0.25, `worker-1 busy ${w1} s should include the 300 ms stall`);
    assert.ok(w0 >= 0 && w0 < 0.25, `worker-0 busy ${w0} s: it did not stall`);
    assert.notEqual(busy(m, 'main'), undefined);
  });

  test('an idle worker is not woken by its metrics', { skip: process.platform !== 'linux' }, async () => {
    // A delay monitor (a 10 ms timer) would wake the thread ~30 times in 300 ms; the loop's own
    // timer for this interval wakes it once.
    const reply = await waitForReply(workers[0]!, { type: 'idle-wakeups', idleMs: 300 }, 'idle-wakeups');
    assert.ok(Number(reply.wakeups) <= 5, `an idle worker was woken ${reply.wakeups} times in 300 ms`);
  });

  test('control-plane state appears as one-hot gauges', async () => {
    metrics.control.onKeySnapshot({
      epoch: 7,
      key: { incarnationId: 3 },
      modes: { imds: 'audit', wireserver: 'enforce', hostga: 'enforce' },
      health: 'ok',
      keyIncarnationId: 3,
    });
    metrics.control.onPolicyCompiled({ epoch: 4, failClosed: false, keptPrevious: true, problems: 2 });
    metrics.control.setRedirectorSource(() => ({
      state: 'running',
      programs: Array.from({ length: 5 }, () => ({ attached: true })), // connect4/6, sockops, bind4/6
      stats: {
        redirected4: 5n,
        redirected6: 2n,
        exempted: 9n,
        published: 7n,
        publish_failed: 1n,
        conn_entries: 3n,
        conn_map_size: 16384n,
      },
    }));
    const m = await scrape(server);
    assert.equal(series(m, 'gpa_endpoint_mode', { endpoint: 'imds', mode: 'audit' }), 1);
    assert.equal(series(m, 'gpa_endpoint_mode', { endpoint: 'imds', mode: 'disabled' }), 0);
    assert.equal(series(m, 'gpa_endpoint_mode', { endpoint: 'hostga', mode: 'enforce' }), 1);
    assert.equal(series(m, 'gpa_key_incarnation_id'), 3);
    assert.equal(series(m, 'gpa_key_health', { health: 'ok' }), 1);
    assert.equal(series(m, 'gpa_policy_epoch'), 4);
    assert.equal(series(m, 'gpa_policy_compile_failures_total'), 1);
    assert.equal(series(m, 'gpa_redirector_state', { state: 'running' }), 1);
    assert.equal(series(m, 'gpa_redirector_programs_attached'), 5);
    assert.equal(series(m, 'gpa_bpf_redirected_total'), 7);
    assert.equal(series(m, 'gpa_bpf_published_total'), 7);
    assert.equal(series(m, 'gpa_bpf_publish_failures_total'), 1);
    assert.equal(series(m, 'gpa_bpf_map_entries', { map: 'conn' }), 3);
    assert.equal(series(m, 'gpa_bpf_map_capacity', { map: 'conn' }), 16384);
  });

  test('a worker that does not answer is left out instead of hanging the scrape', async () => {
    const silent = new Worker('require("node:worker_threads").parentPort.on("message", () => {})', {
      eval: true,
      execArgv: [],
    });
    try {
      const m2 = createAgentMetrics({ workerTimeoutMs: 200, processMetrics: false });
      m2.setWorkers([workers[0]!, silent]);
      const text = await m2.gather();
      m2.close();
      assert.ok(
        series(parseExposition(text), 'gpa_requests_total', { endpoint: 'imds', decision: 'allow', status: '200' })! >=
          3,
      );
    } finally {
      await silent.terminate();
    }
  });

  test('only GET /metrics is served', async () => {
    const res = await fetch(server.url.replace('/metrics', '/other'));
    assert.equal(res.status, 404);
    await res.arrayBuffer();
  });
});

describe('metrics across a worker restart', () => {
  const imds200 = { endpoint: 'imds', decision: 'allow', status: '200' };
  const requests = async (m: AgentMetrics) => series(parseExposition(await m.gather()), 'gpa_requests_total', imds200);

  test('counters never go back when a worker is replaced, and the new one counts', async () => {
    const m = createAgentMetrics({ workerTimeoutMs: 2000, processMetrics: false });
    const live: Worker[] = [await startWorker(0), await startWorker(1)];
    try {
      m.setWorkers(live);
      await record(live[0]!, Array(10).fill(allowImds(0.1)));
      await record(live[1]!, Array(10).fill(allowImds(0.1)));
      assert.equal(await requests(m), 20);
      // Worker 0 dies (as WorkerSet sees it: exit, then a new worker in its place).
      await live[0]!.terminate();
      m.setWorker(0, null);
      const t0 = performance.now();
      assert.equal(await requests(m), 20, 'what the dead worker counted stays');
      assert.ok(performance.now() - t0 < 1000, 'the scrape does not wait for the dead worker');
      live[0] = await startWorker(0);
      m.setWorker(0, live[0]);
      await record(live[0], Array(5).fill(allowImds(0.1)));
      assert.equal(await requests(m), 25, "the new worker's requests are added");
      const text = await m.gather();
      assert.notEqual(
        series(parseExposition(text), 'gpa_event_loop_busy_seconds_total', { thread: 'worker-0' }),
        undefined,
      );
      // And again: totals from several generations of worker 0 fold together.
      await live[0].terminate();
      m.setWorker(0, null);
      live[0] = await startWorker(0);
      m.setWorker(0, live[0]);
      await record(live[0], [allowImds(0.1)]);
      assert.equal(await requests(m), 26);
      assert.equal(await requests(m), 26, 'a scrape with no traffic changes nothing');
    } finally {
      m.close();
      await Promise.all(live.map((w) => w.terminate()));
    }
  });

  test('workers are kept by index: a gap filled later counts both', async () => {
    const m = createAgentMetrics({ workerTimeoutMs: 2000, processMetrics: false });
    const w1 = await startWorker(1);
    let w0: Worker | null = null;
    try {
      // Worker 0 died before the metrics were set up; WorkerSet then reports its replacement as 0.
      m.setWorkers([null, w1]);
      await record(w1, Array(4).fill(allowImds(0.1)));
      assert.equal(await requests(m), 4);
      w0 = await startWorker(0);
      m.setWorker(0, w0);
      await record(w0, Array(2).fill(allowImds(0.1)));
      assert.equal(await requests(m), 6);
      await record(w1, [allowImds(0.1)]);
      assert.equal(await requests(m), 7, 'worker 1 is still asked');
    } finally {
      m.close();
      await Promise.all([w1.terminate(), w0?.terminate()]);
    }
  });

  test('a worker that dies while a scrape waits for another is counted once', async () => {
    // Endpoints that answer after a delay (a unit test of the merge: real workers cannot be timed so).
    const fake = (value: number, delayMs: number) => {
      const listeners = new Set<(m: unknown) => void>();
      return {
        on: (_e: 'message', f: (m: unknown) => void) => listeners.add(f),
        off: (_e: 'message', f: (m: unknown) => void) => listeners.delete(f),
        postMessage(m: { id: number }) {
          setTimeout(() => {
            const metrics = [
              { name: 'x_total', help: 'x', type: 'counter', aggregator: 'sum', values: [{ value, labels: {} }] },
            ];
            for (const f of [...listeners]) f({ type: 'gpa:metrics-response', id: m.id, metrics });
          }, delayMs);
        },
      };
    };
    const m = createAgentMetrics({ processMetrics: false, workerTimeoutMs: 1000 });
    const x = async (p: Promise<string>) => series(parseExposition(await p), 'x_total');
    try {
      m.setWorkers([fake(10, 5), fake(20, 200)]);
      assert.equal(await x(m.gather()), 30);
      const racing = m.gather();
      // Worker 0 answers at 5 ms and exits at 50 ms; worker 1 answers at 200 ms.
      setTimeout(() => m.setWorker(0, null), 50);
      assert.equal(await x(racing), 30);
      assert.equal(await x(m.gather()), 30);
    } finally {
      m.close();
    }
  });

  test('a worker that stops answering counts with what it said last', async () => {
    const m = createAgentMetrics({ workerTimeoutMs: 200, processMetrics: false });
    const w = await startWorker(0);
    try {
      m.setWorkers([w]);
      await record(w, Array(3).fill(allowImds(0.1)));
      assert.equal(await requests(m), 3);
      const blocked = waitFor(w, 'blocked');
      w.postMessage({ type: 'block', blockMs: 600 });
      assert.equal(await requests(m), 3, 'a busy worker does not take its counts out of the total');
      await blocked;
    } finally {
      m.close();
      await w.terminate();
    }
  });
});

describe('metrics listener address', () => {
  test('a non-loopback address is refused with a message naming the fix', async () => {
    await assert.rejects(
      startMetricsServer({ host: '0.0.0.0', port: 0, gather: async () => '' }),
      /not a loopback address.*127\.0\.0\.1/,
    );
    await assert.rejects(startMetricsServer({ host: 'localhost', port: 0, gather: async () => '' }), /not a loopback/);
  });

  test('loopback recognition', () => {
    for (const a of ['127.0.0.1', '127.63.129.16', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopbackAddress(a), a);
    for (const a of ['0.0.0.0', '10.0.0.1', '169.254.169.254', '::', 'localhost', '128.0.0.1'])
      assert.ok(!isLoopbackAddress(a), a);
  });

  test('scenario 1: the metrics socket is bound to loopback only', async () => {
    const s = await startMetricsServer({ port: 0, gather: async () => '' });
    try {
      const { readFileSync } = await import('node:fs');
      const hexPort = s.port.toString(16).toUpperCase().padStart(4, '0');
      const listening = readFileSync('/proc/net/tcp', 'utf8')
        .split('\n')
        .slice(1)
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f[3] === '0A' && f[1]?.endsWith(`:${hexPort}`));
      assert.equal(listening.length, 1);
      assert.equal(listening[0]![1], `0100007F:${hexPort}`);
    } finally {
      await s.close();
    }
  });
});
