import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const pkg = JSON.parse(readFileSync(new URL('package.json', `file://${root}`), 'utf8')) as {
  version: string;
  scripts: Record<string, string>;
};

test('`npm start` ends in a command that reaches the CLI (its last step, asked for --version)', () => {
  // The script is `<bootstrap> && <build> && <cli> demo`; the demo itself is tested in test/ops.
  // Its CLI step must run the dispatcher, not just load it: run that step with --version instead.
  const steps = pkg.scripts.start!.split('&&').map((s) => s.trim());
  const cli = steps.at(-1)!;
  assert.match(cli, / demo$/);
  const r = spawnSync('sh', ['-c', `${cli.replace(/ demo$/, ' --version')}`], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), pkg.version);
});
