/**
 * The data-plane workers' V8 heap limits: applied by default, yielding to heap flags an operator
 * (or a benchmark) gives node explicitly, and really in force in a worker started with them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { WORKER_HEAP_LIMITS, workerResourceLimits } from '../../lib/agent/index.js';

test('default: both limits', () => {
  assert.deepEqual(workerResourceLimits([]), { ...WORKER_HEAP_LIMITS });
  assert.deepEqual(workerResourceLimits(['--enable-source-maps', '']), { ...WORKER_HEAP_LIMITS });
});

test('an explicit node heap flag wins over the limit it covers, in either spelling', () => {
  assert.deepEqual(workerResourceLimits(['--max-semi-space-size=2']), {
    maxOldGenerationSizeMb: WORKER_HEAP_LIMITS.maxOldGenerationSizeMb,
  });
  assert.deepEqual(workerResourceLimits(['--max_old_space_size', '4096']), {
    maxYoungGenerationSizeMb: WORKER_HEAP_LIMITS.maxYoungGenerationSizeMb,
  });
  assert.deepEqual(workerResourceLimits(['--max-old-space-size=100', '--max-semi-space-size=1']), {});
  // A flag that only starts with the same words is not the same flag.
  assert.deepEqual(workerResourceLimits(['--max-old-space-size-foo=1']), { ...WORKER_HEAP_LIMITS });
});

test('a worker started with the limits runs under them', async () => {
  const code = `const v8 = require('node:v8');
    require('node:worker_threads').parentPort.postMessage(v8.getHeapStatistics().heap_size_limit);`;
  const limited = (rl: object) =>
    new Promise<number>((resolve, reject) => {
      const w = new Worker(code, { eval: true, resourceLimits: rl });
      w.once('message', (m: number) => {
        void w.terminate();
        resolve(m);
      });
      w.once('error', reject);
    });
  const mb = (await limited(workerResourceLimits([]))) / 1048576;
  // heap_size_limit = old generation + young generation (plus V8 rounding).
  const expected = WORKER_HEAP_LIMITS.maxOldGenerationSizeMb + WORKER_HEAP_LIMITS.maxYoungGenerationSizeMb;
  assert.ok(Math.abs(mb - expected) < 32, `heap limit ${mb} MB, expected about ${expected} MB`);
  const unlimited = (await limited({})) / 1048576;
  assert.ok(unlimited > mb, `a worker without limits (${unlimited} MB) should have a larger heap than ${mb} MB`);
});
