// `fileLogLevel`: `gpa run` writes a log line only at or above the configured level.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

const bin = new URL('../../../bin/gpa.mjs', import.meta.url).pathname;

/** Runs the agent (no eBPF, WireServer unreachable) until it is ready and has polled once, then stops it. */
async function logOf(level: string): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gpa-loglevel-'));
  try {
    const config = path.join(dir, 'agent.json');
    // 127.63.129.16:9 (discard): nothing listens, so the first secure-channel poll fails with a warning.
    const nowhere = { address: '127.63.129.16', port: 9 };
    writeFileSync(
      config,
      JSON.stringify({
        fileLogLevel: level,
        redirect: false,
        pinDir: null,
        logFolder: path.join(dir, 'log'),
        latchKeyFolder: path.join(dir, 'keys'),
        endpoints: { imds: nowhere, wireserver: nowhere, hostga: nowhere },
        listener: { address: '127.0.0.1', port: 0 },
        metrics: null,
        drainSeconds: 1,
      }),
    );
    const child = spawn(process.execPath, [bin, 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 20_000;
    while (!/secure channel poll failed/.test(err) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, err);
    return err;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('fileLogLevel info writes info and warn lines; warn drops the info lines', async () => {
  const info = await logOf('info');
  assert.match(info, / warn secure channel poll failed/);
  assert.match(info, / info listening on 127\.0\.0\.1:\d+/);
  const warn = await logOf('warn');
  assert.match(warn, / warn secure channel poll failed/);
  assert.doesNotMatch(warn, / info /);
});
