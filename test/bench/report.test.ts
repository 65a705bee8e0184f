import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RoundResult, ScenarioResult, Summary } from '../../bench/macro/measure.js';
import { median } from '../../bench/macro/proc.js';
import { compare, goals, goalTable, roundsInterval, table } from '../../bench/macro/report.js';

/** A round with the given p50/p99 (µs) and req/s; what the ratios do not read is filled in. */
function round(i: number, p50: number, p99: number, rps: number): RoundResult {
  return {
    round: i,
    requests: rps * 3,
    durationSec: 3,
    rps,
    errors: { connect: 0, read: 0, write: 0, status: 0, timeout: 0 },
    latencyUs: { min: 10, mean: p50, p50, p90: p50, p99, p999: p99, max: p99 },
    loadgenCpuShare: 0.3,
    targetCpuUsPerReq: 50,
    targetRssMiBMax: 60,
  };
}

/** Rounds of one target: p50s, p99s and req/s per round. */
function target(p50: number[], p99: number[], rps: number[]) {
  const rounds = p50.map((v, i) => round(i, v, p99[i]!, rps[i]!));
  const med: Summary = {
    p50: median(p50),
    p90: median(p50),
    p99: median(p99),
    p999: median(p99),
    max: Math.max(...p99),
    rps: median(rps),
    cpuUsPerReq: 50,
    rssMiBMax: 60,
    errors: 0,
    loadgenCpuShare: 0.3,
  };
  return { median: med, rounds };
}

function scenario(t: ScenarioResult['targets'], keepAlive = true, clients = 1): ScenarioResult {
  return { id: 'instance-ka-c1', path: 'instance', keepAlive, clients, url: '/metadata/instance', targets: t };
}

const eight = (f: (i: number) => number) => Array.from({ length: 8 }, (_, i) => f(i));

describe('bench report: agent/nginx ratios and how far they move with the rounds', () => {
  it('roundsInterval: a statistic that no round changes has a zero-width interval', () => {
    assert.deepEqual(
      roundsInterval(8, () => 1.25),
      [1.25, 1.25],
    );
  });

  it('roundsInterval: brackets the statistic of all rounds, and is the same for the same rounds', () => {
    const v = [10, 12, 9, 30, 11, 10, 13, 8];
    const stat = (idx: number[]) => median(idx.map((i) => v[i]!));
    const a = roundsInterval(8, stat)!;
    assert.ok(a[0] < median(v) && median(v) < a[1], `${a} around ${median(v)}`);
    assert.ok(a[1] < 30, 'one outlying round does not set the upper end of a median');
    assert.deepEqual(roundsInterval(8, stat), a);
  });

  it('roundsInterval: null with one round, or when most resamples give no value', () => {
    assert.equal(
      roundsInterval(1, () => 1),
      null,
    );
    assert.equal(
      roundsInterval(8, () => Number.NaN),
      null,
    );
  });

  it('pairs each round of the agent and nginx with the direct run of the same round', () => {
    // The floor drifts by round; both proxies add exactly 20 and 10 µs over it in every round.
    const floor = eight((i) => 100 + 7 * i);
    const s = scenario({
      direct: target(
        floor,
        floor.map((x) => x * 2),
        eight(() => 10_000),
      ),
      nginx: target(
        floor.map((x) => x + 10),
        floor.map((x) => x * 2 + 50),
        eight(() => 8000),
      ),
      agent: target(
        floor.map((x) => x + 20),
        floor.map((x) => x * 2 + 150),
        eight(() => 6000),
      ),
    });
    const c = compare(s);
    assert.deepEqual(c.added, { nginx: { p50: 10, p99: 50 }, agent: { p50: 20, p99: 150 } });
    assert.equal(c.agentVsNginx?.addedP50, 2);
    assert.equal(c.agentVsNginx?.addedP99, 3);
    assert.equal(c.agentVsNginx?.throughput, 0.75);
    assert.deepEqual(c.agentVsNginx?.spread, { addedP50: [2, 2], addedP99: [3, 3], throughput: [0.75, 0.75] });
  });

  it('shows a wide interval when the verdict rests on a few rounds, and prints it with the goal', () => {
    // nginx adds 20 µs in most rounds and 5 in three; the agent adds 28 throughout.
    const floor = eight(() => 100);
    const s = scenario({
      direct: target(
        floor,
        eight(() => 200),
        eight(() => 10_000),
      ),
      nginx: target(
        eight((i) => (i % 3 === 0 ? 105 : 120)),
        eight(() => 260),
        eight(() => 8000),
      ),
      agent: target(
        eight(() => 128),
        eight(() => 300),
        eight(() => 7000),
      ),
    });
    const comps = [compare(s)];
    const r = comps[0]!.agentVsNginx!;
    assert.equal(r.addedP50, 1.4);
    const [lo, hi] = r.spread.addedP50!;
    assert.ok(lo <= 1.4 && hi > 1.5, `the interval ${lo}-${hi} reaches past the goal`);
    const g = goals([s], comps, 60, 500);
    assert.match(
      goalTable(g),
      /ok {2}keep-alive 1 client: agent\/nginx added p50 \(instance\): 1\.4 \[1\.40-5\.60\] \(goal <= 1\.5\)/,
    );
    assert.match(table([s], comps), /added p50 1\.40x \[1\.40-5\.60\]/);
  });
});
