/**
 * The data-plane workers' V8 heap limits: applied by default, overridable per limit through the
 * environment (0 = V8's default), bad values refused with the variable's name, and really in force
 * in a worker started with them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { WORKER_HEAP_ENV, WORKER_HEAP_LIMITS, workerResourceLimits } from '../../lib/agent/index.js';

const YOUNG = WORKER_HEAP_ENV.maxYoungGenerationSizeMb;
const OLD = WORKER_HEAP_ENV.maxOldGenerationSizeMb;

test('default: both limits, also when the variables are empty', () => {
  assert.deepEqual(workerResourceLimits({}), { ...WORKER_HEAP_LIMITS });
  assert.deepEqual(workerResourceLimits({ [YOUNG]: '', [OLD]: '' }), { ...WORKER_HEAP_LIMITS });
});

test('each limit can be set or left to V8 (0) on its own', () => {
  assert.deepEqual(workerResourceLimits({ [YOUNG]: '48' }), {
    maxYoungGenerationSizeMb: 48,
    maxOldGenerationSizeMb: WORKER_HEAP_LIMITS.maxOldGenerationSizeMb,
  });
  assert.deepEqual(workerResourceLimits({ [OLD]: '0' }), {
    maxYoungGenerationSizeMb: WORKER_HEAP_LIMITS.maxYoungGenerationSizeMb,
  });
  assert.deepEqual(workerResourceLimits({ [YOUNG]: '0', [OLD]: '0' }), {});
});

test('a value that is not a whole number of MB is refused, naming the variable', () => {
  for (const bad of ['-1', '1.5', 'big', '99999999'])
    assert.throws(
      () => workerResourceLimits({ [OLD]: bad }),
      new RegExp(`^Error: ${OLD}=${bad} must be a whole number`),
    );
});

test('a worker started with the limits runs under them', async () => {
  const code = `const v8 = require('node:v8');
    require('node:worker_threads').parentPort.postMessage(v8.getHeapStatistics().heap_size_limit);`;
  const heapLimitMb = (rl: object) =>
    new Promise<number>((resolve, reject) => {
      const w = new Worker(code, { eval: true, resourceLimits: rl });
      w.once('message', (m: number) => {
        void w.terminate();
        resolve(m / 1048576);
      });
      w.once('error', reject);
    });
  const mb = await heapLimitMb(workerResourceLimits({}));
  // heap_size_limit = old generation + young generation (plus V8 rounding).
  const expected = WORKER_HEAP_LIMITS.maxOldGenerationSizeMb + WORKER_HEAP_LIMITS.maxYoungGenerationSizeMb;
  assert.ok(Math.abs(mb - expected) < 32, `heap limit ${mb} MB, expected about ${expected} MB`);
  const unlimited = await heapLimitMb(workerResourceLimits({ [YOUNG]: '0', [OLD]: '0' }));
  assert.ok(unlimited > mb, `a worker without limits (${unlimited} MB) should have a larger heap than ${mb} MB`);
});
