import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { PolicyCodes, PolicyProblemCodes } from '../../lib/policy/index.js';

const doc = readFileSync(new URL('../../../docs/policy.md', import.meta.url), 'utf8');

/** Rows `| \`code\` | ... |` of the table that follows the given heading line. */
function tableCodes(after: string): Map<string, string[]> {
  const start = doc.indexOf(after);
  assert.ok(start >= 0, `docs/policy.md lacks "${after}"`);
  const rows = new Map<string, string[]>();
  const lines = doc.slice(start).split('\n').slice(1);
  let seen = false;
  for (const line of lines) {
    if (!line.startsWith('|')) {
      if (seen) break;
      continue;
    }
    seen = true;
    const cells = line
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    const m = /^`([a-z0-9_]+)`$/.exec(cells[0] ?? '');
    if (m) rows.set(m[1]!, cells.slice(1));
  }
  return rows;
}

test('docs/policy.md lists every decision code with its kind and status, and nothing else', () => {
  const rows = tableCodes('Every `Decision.code`');
  assert.deepEqual([...rows.keys()].sort(), Object.keys(PolicyCodes).sort());
  for (const [code, spec] of Object.entries(PolicyCodes)) {
    const [kind, status] = rows.get(code)!;
    assert.equal(kind, spec.kind, code);
    assert.equal(status, spec.status === null ? '—' : String(spec.status), code);
  }
});

test('docs/policy.md lists every problem code, and nothing else', () => {
  const rows = tableCodes('Every `PolicyProblem.code`');
  assert.deepEqual([...rows.keys()].sort(), Object.keys(PolicyProblemCodes).sort());
});
