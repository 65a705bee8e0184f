// What keeps an idle agent small (docs/operations.md "Memory"): no ES-module import of node:http in
// the agent (on Node 24 it loads the bundled undici into every thread), one heap trim after start-up
// on Node ≥ 24 (V8's memory reducer does not run there by itself), malloc_trim through the addon.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { HEAP_TRIM, OldGarbageWatch } from '../../lib/agent/heap-trim.js';
import { trimNativeHeap } from '../../lib/redirector/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const lib = path.join(repoRoot, 'lib');

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? tsFiles(p) : n.endsWith('.ts') ? [p] : [];
  });
}

describe('idle memory', () => {
  it('the agent loads node:http only through lib/node-http.ts (require, no undici)', () => {
    const offenders = tsFiles(lib)
      .filter((f) => !f.endsWith('node-http.ts') && !f.includes(`${path.sep}emulator${path.sep}`))
      .filter((f) => /^import\s+(?!type\b)[^;]*from\s+'node:http'/m.test(readFileSync(f, 'utf8')))
      .map((f) => path.relative(repoRoot, f));
    assert.deepEqual(offenders, [], 'value imports of node:http (use lib/node-http.ts; `import type` is fine)');
  });

  it('trims the V8 heap once on Node 24 and later, not before; the trim runs a full GC here', () => {
    assert.equal(HEAP_TRIM, Number(process.versions.node.split('.')[0]) >= 24);
    // Older V8s read the options differently (a minor GC); the agent does not trim there.
    if (!HEAP_TRIM) return;
    // In a child: the trim sets --expose-gc process-wide.
    const script = `
      const { trimHeap } = await import(${JSON.stringify(path.join(repoRoot, 'dist', 'lib', 'agent', 'heap-trim.js'))});
      const { performance, PerformanceObserver } = await import('node:perf_hooks');
      let majors = 0;
      new PerformanceObserver((l) => { for (const e of l.getEntries()) if (e.detail?.kind === 4 || e.kind === 4) majors++; }).observe({ entryTypes: ['gc'] });
      globalThis.junk = Array.from({ length: 2e5 }, (_, i) => ({ i }));
      globalThis.junk = null;
      trimHeap();
      await new Promise((r) => setTimeout(r, 50));
      console.log(JSON.stringify({ majors, gc: typeof globalThis.gc }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim()) as { majors: number };
    assert.ok(out.majors >= 1, `a major GC ran (${r.stdout.trim()})`);
  });

  it('collects the old generation once it grew a limit past its size after the last collection', () => {
    let size = 10;
    let collected = 0;
    // Collecting leaves the live part (4 of what grew here).
    const watch = new OldGarbageWatch(
      5,
      () => size,
      () => {
        collected++;
        size = 14;
      },
    );
    size = 14;
    assert.equal(watch.check(), false, 'grew 4, limit 5');
    size = 15;
    assert.equal(watch.check(), true, 'grew 5');
    assert.equal(collected, 1);
    size = 18;
    assert.equal(watch.check(), false, 'the baseline is the size after the collection (14)');
    size = 12; // V8 collected on its own
    assert.equal(watch.check(), false);
    size = 17;
    assert.equal(watch.check(), true, 'measured from the lower size');
    assert.equal(watch.collections, 2);
  });

  it('a real isolate: promoted garbage is collected by the watch and stays collected', () => {
    // In a child: the watch exposes gc process-wide.
    const script = `
      const { OldGarbageWatch, oldGenerationBytes } = await import(${JSON.stringify(path.join(repoRoot, 'dist', 'lib', 'agent', 'heap-trim.js'))});
      const { PerformanceObserver, constants } = await import('node:perf_hooks');
      let majors = 0;
      new PerformanceObserver((l) => { for (const e of l.getEntries()) if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++; }).observe({ entryTypes: ['gc'] });
      const watch = new OldGarbageWatch(1 << 20);
      // Kept across a few scavenges (so promoted), then dropped: old-generation garbage.
      let keep = [];
      for (let i = 0; i < 40; i++) { keep.push(Array.from({ length: 5000 }, (_, j) => ({ j, s: 'x' + j }))); for (let k = 0; k < 3; k++) Array.from({ length: 20000 }, (_, j) => ({ j })); }
      keep = null;
      const before = oldGenerationBytes();
      const majorsBefore = majors;
      const collected = watch.check();
      const after = oldGenerationBytes();
      await new Promise((r) => setTimeout(r, 20));
      console.log(JSON.stringify({ before, after, collected, again: watch.check(), majors: majors - majorsBefore }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim()) as {
      before: number;
      after: number;
      collected: boolean;
      again: boolean;
      majors: number;
    };
    assert.ok(out.before > 4 << 20, `garbage was promoted (${r.stdout.trim()})`);
    assert.equal(out.collected, true, r.stdout);
    assert.ok(out.majors >= 1, `a major GC ran (${r.stdout.trim()})`);
    assert.ok(out.after < out.before / 2, `the old generation shrank (${r.stdout.trim()})`);
    assert.equal(out.again, false, 'nothing grew since');
  });

  it('gives free malloc memory back through the addon (glibc)', { skip: process.platform !== 'linux' }, () => {
    assert.equal(typeof trimNativeHeap(), 'boolean');
  });
});
