import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rssBytes, rssParts } from '../../bench/macro/proc.js';

describe('bench /proc readers', () => {
  it('rssParts splits the resident set into anonymous, file-backed and shared memory that add up to it', () => {
    const parts = rssParts(process.pid);
    const total = rssBytes(process.pid) / 1048576;
    assert.ok(parts !== null);
    assert.ok(parts.anonMiB > 1, `a Node process has its own heap: ${parts.anonMiB}`);
    assert.ok(parts.fileMiB > 1, `and maps its executable: ${parts.fileMiB}`);
    const sum = parts.anonMiB + parts.fileMiB + parts.shmemMiB;
    // Two reads a moment apart: the heap may move by a page or two in between.
    assert.ok(Math.abs(sum - total) < 2, `${sum} MiB in parts against ${total} MiB resident`);
  });

  it('rssParts is null for a process that is gone', () => {
    assert.equal(rssParts(2 ** 22 + 12345), null);
  });
});
