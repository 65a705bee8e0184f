import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hopDurations, hopsTable, parseTrace, type Role, summarizeHops } from '../../bench/macro/hops.js';
import { parseOptions } from '../../bench/macro/options.js';

// Thread ids in the synthetic traces: wrk 10, the proxy 20, the host 30, something else 40.
const roles = new Map<number, Role>([
  [10, 'client'],
  [20, 'proxy'],
  [30, 'host'],
]);
const roleOf = (tid: number, comm: string): Role | null => (comm === 'other' ? null : (roles.get(tid) ?? null));

/** One `perf script -F comm,tid,time,event,trace` line; `t` in µs from an arbitrary origin. */
function line(comm: string, tid: number, t: number, event: 'enter' | 'exit', nr: number, ret?: number): string {
  const time = (1000 + t / 1e6).toFixed(6);
  const trace = event === 'enter' ? `NR ${nr} (3, 7f00, 100, 0, 0, 0)` : `NR ${nr} = ${ret}`;
  return `${comm.padStart(16)} ${tid} ${time}: raw_syscalls:sys_${event}: ${trace}`;
}

/** One request through a proxy starting at `t0`, with known hop lengths. */
function proxiedRequest(t0: number): string[] {
  return [
    line('wrk', 10, t0, 'enter', 1), // the request write
    line('wrk', 10, t0 + 6, 'exit', 1, 122),
    line('node', 20, t0 + 9, 'exit', 281, 1), // proxy wakes: 9
    line('node', 20, t0 + 10, 'enter', 0),
    line('node', 20, t0 + 11, 'exit', 0, 122),
    line('node', 20, t0 + 21, 'enter', 1), // upstream write: 12 after the wake
    line('node', 30, t0 + 40, 'exit', 281, 1), // the host wakes before the proxy's write returns: 19
    line('node', 20, t0 + 41, 'exit', 1, 353), // the write took 20
    line('node', 20, t0 + 42, 'enter', 281),
    line('other', 40, t0 + 50, 'enter', 1), // not traced for the hops
    line('node', 30, t0 + 45, 'enter', 0),
    line('node', 30, t0 + 46, 'exit', 0, 353),
    line('node', 30, t0 + 90, 'enter', 20), // host response: 50 after its wake
    line('node', 20, t0 + 120, 'exit', 281, 1), // proxy wakes: 30
    line('node', 30, t0 + 121, 'exit', 20, 604),
    line('node', 20, t0 + 122, 'enter', 0),
    line('node', 20, t0 + 123, 'exit', 0, 604),
    line('node', 20, t0 + 128, 'enter', 44), // client write: 8
    line('wrk', 10, t0 + 140, 'exit', 232, 1), // wrk wakes: 12 after the send's entry
    line('node', 20, t0 + 145, 'exit', 44, 614), // the send took 17
    line('wrk', 10, t0 + 141, 'enter', 0),
    line('wrk', 10, t0 + 142, 'exit', 0, 614),
  ];
}

describe('bench --hops: per-hop latency from a perf syscall trace', () => {
  it('parses perf script lines of the traced threads, in time order', () => {
    const ev = parseTrace(
      [
        line('wrk', 10, 5, 'exit', 232, 1),
        line('wrk', 10, 1, 'enter', 1),
        line('other', 40, 2, 'enter', 1),
        '            perf 99 1000.000003:     sched:sched_switch: prev_comm=perf prev_pid=99',
        'garbage',
      ].join('\n'),
      roleOf,
    );
    assert.equal(ev.length, 2);
    assert.deepEqual(
      ev.map((e) => [e.role, e.kind, e.nr, e.ret]),
      [
        ['client', 'enter', 1, 0],
        ['client', 'exit', 232, 1],
      ],
    );
    assert.ok(Math.abs(ev[1]!.tUs - ev[0]!.tUs - 4) < 0.01);
  });

  it('measures each hop of a proxied request, wake-ups searched from the causing write', () => {
    const trace = [...proxiedRequest(0), ...proxiedRequest(1000), ...proxiedRequest(2000)].join('\n');
    const d = hopDurations(parseTrace(trace, roleOf), true);
    const r = summarizeHops('agent', 'instance-ka-c1', d);
    assert.equal(r.requests, 3);
    const want: Record<string, number> = {
      'client write → proxy wakes': 9,
      'proxy: wake → upstream write': 12,
      'proxy: upstream write syscall': 20,
      'upstream write → host wakes': 19,
      'host: wake → response write': 50,
      'host response → proxy wakes': 30,
      'proxy: wake → client write': 8,
      'proxy: client write syscall': 17,
      'client write → client wakes': 12,
    };
    for (const [hop, us] of Object.entries(want))
      assert.ok(Math.abs((r.hopsUs as Record<string, number>)[hop]! - us) < 0.01, `${hop}: ${r.hopsUs[hop as never]}`);
    assert.ok(Math.abs(r.totalUs - 140) < 0.01);
    assert.match(hopsTable([r]), /proxy: wake → upstream write\s+12/);
  });

  it('measures direct requests as client → host → client', () => {
    const ev = parseTrace(
      [
        line('wrk', 10, 0, 'enter', 1),
        line('node', 30, 0, 'exit', 281, 0), // a wait that returned nothing is not a wake-up
        line('node', 30, 25, 'exit', 281, 1),
        line('node', 30, 70, 'enter', 20),
        line('wrk', 10, 95, 'exit', 232, 1),
      ].join('\n'),
      roleOf,
    );
    const r = summarizeHops('direct', 'x', hopDurations(ev, false));
    assert.deepEqual(r.hopsUs, {
      'client write → host wakes': 25,
      'host: wake → response write': 45,
      'host response → client wakes': 25,
    });
    assert.equal(r.totalUs, 95);
  });

  it('describes the slowest 1% of requests by their own hops', () => {
    // 200 direct requests 1 ms apart; two are slow, each in a different hop.
    const lines: string[] = [];
    for (let n = 0; n < 200; n++) {
      const t0 = n * 1000;
      const hostWork = n === 57 ? 545 : 45;
      const clientWake = n === 120 ? 325 : 25;
      lines.push(
        line('wrk', 10, t0, 'enter', 1),
        line('node', 30, t0 + 25, 'exit', 281, 1),
        line('node', 30, t0 + 25 + hostWork, 'enter', 20),
        line('wrk', 10, t0 + 25 + hostWork + clientWake, 'exit', 232, 1),
      );
    }
    const r = summarizeHops('direct', 'x', hopDurations(parseTrace(lines.join('\n'), roleOf), false));
    assert.equal(r.requests, 200);
    assert.equal(r.totalUs, 95);
    assert.equal(r.tail?.requests, 2);
    assert.equal(r.tail?.thresholdUs, 395); // the faster of the two slow ones
    assert.deepEqual(r.tail?.hopsUs, {
      'client write → host wakes': 25,
      'host: wake → response write': (545 + 45) / 2,
      'host response → client wakes': (25 + 325) / 2,
    });
    assert.equal(r.tail?.totalUs, (595 + 395) / 2);
    assert.match(hopsTable([r]), /host: wake → response write\s+45\s+295/);
  });

  it('counts no request that the trace cut short', () => {
    const cut = proxiedRequest(0).slice(0, 12).join('\n');
    assert.equal(summarizeHops('nginx', 'x', hopDurations(parseTrace(cut, roleOf), true)).requests, 0);
  });

  it('parses --hops: 1-client instance scenarios, 3 rounds of 2 s unless told', () => {
    const o = parseOptions(['--hops']);
    assert.equal(o.hops, true);
    assert.deepEqual(o.scenarioFilter, ['instance-ka-c1', 'instance-newconn-c1']);
    assert.equal(o.durationSec, 2);
    assert.equal(o.rounds, 3);
    assert.deepEqual(parseOptions(['--hops', '--scenario', 'token-ka-c1', '--duration', '1']).scenarioFilter, [
      'token-ka-c1',
    ]);
    assert.throws(() => parseOptions(['--hops', '--soak']), /separate runs/);
  });
});
