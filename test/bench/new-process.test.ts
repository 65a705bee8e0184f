import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addedRatio, summarizeNewProcess } from '../../bench/macro/new-process.js';
import { parseOptions } from '../../bench/macro/options.js';

describe('bench --new-process', () => {
  it('parses the option: default 200 requests and 3 rounds, a count when given, not with --hops or --soak', () => {
    const d = parseOptions(['--new-process']);
    assert.equal(d.newProcess, 200);
    assert.equal(d.rounds, 3);
    assert.equal(parseOptions(['--new-process', '50', '--rounds', '2']).newProcess, 50);
    assert.equal(parseOptions(['--new-process', '50', '--rounds', '2']).rounds, 2);
    assert.equal(parseOptions(['--new-process', '--no-write']).write, false);
    assert.equal(parseOptions([]).newProcess, 0);
    assert.throws(() => parseOptions(['--new-process', '--hops']), /separate runs/);
    assert.throws(() => parseOptions(['--new-process', '--soak']), /separate runs/);
  });

  it('summarizes pooled samples: p50, p90, added p50 against the floor, CPU per request, the ratio', () => {
    const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
    const rows = summarizeNewProcess(
      new Map([
        ['direct', range(400, 100)],
        ['nginx', range(450, 100)],
        ['agent', range(600, 100)],
      ]),
      new Map([
        ['direct', 0.05],
        ['nginx', 0.01],
        ['agent', 0.1],
      ]),
    );
    const by = Object.fromEntries(rows.map((r) => [r.target, r]));
    assert.equal(by.direct!.p50, 450);
    assert.equal(by.direct!.p90, 490);
    assert.equal(by.direct!.addedP50, null);
    assert.equal(by.nginx!.addedP50, 50);
    assert.equal(by.agent!.addedP50, 200);
    assert.equal(by.agent!.cpuUsPerReq, 1000);
    assert.equal(by.nginx!.requests, 100);
    assert.equal(addedRatio(rows), 4);
    // Without the floor nothing is "added"; nginx adding nothing gives no ratio.
    assert.equal(summarizeNewProcess(new Map([['agent', [5]]]), new Map())[0]!.addedP50, null);
    const flat = summarizeNewProcess(
      new Map([
        ['direct', [10]],
        ['nginx', [10]],
        ['agent', [30]],
      ]),
      new Map(),
    );
    assert.equal(addedRatio(flat), null);
  });
});
