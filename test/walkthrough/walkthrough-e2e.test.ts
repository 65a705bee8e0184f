/**
 * docs/walkthrough.md, run end to end: the emulator from the page's VM model file, the agent with real
 * eBPF attached to a child cgroup, every command and file of the page in order. Editing vm.json moves
 * the running agent from Audit to Enforce to a linked profile, and through a key reset, without a
 * restart (the same agent process answers throughout).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTestCgroup, type TestCgroup } from '../helpers/cgroup.js';
import { ebpfGate } from '../helpers/ebpf-env.js';
import { commandsOf, type DocBlock, hasExpectations, normalizeAuditLines, readDocBlocks } from './doc-blocks.js';
import { runShell, type Substitutions, startTerminal, substitute, type Terminal } from './shell-session.js';

const gate = ebpfGate();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** The page's agent.json, checked against what the page says, then pointed at this run's ports and cgroup. */
function patchAgentConfig(text: string, s: Required<Substitutions>, hostga: number, listener: number, cgPath: string) {
  const c = JSON.parse(text);
  assert.deepEqual(c.endpoints, {
    imds: { address: '127.254.169.254', port: 80 },
    wireserver: { address: '127.63.129.16', port: 80 },
    hostga: { address: '127.63.129.16', port: 32526 },
  });
  assert.equal(c.pinDir, null, 'the walkthrough must not leave pins behind');
  c.endpoints.imds.port = s.imdsPort;
  c.endpoints.wireserver.port = s.wireserverPort;
  c.endpoints.hostga.port = hostga;
  c.listener.port = listener;
  c.metrics.port = s.metricsPort;
  c.cgroupPath = cgPath;
  return `${JSON.stringify(c, null, 2)}\n`;
}

describe('docs/walkthrough.md end to end (real eBPF in a child cgroup)', { skip: gate.skip }, () => {
  let workDir: string;
  let cg: TestCgroup;
  const terminals: Terminal[] = [];
  before(() => gate.check());
  after(async () => {
    for (const t of terminals) t.kill();
    await cg?.cleanup();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  test('every block of the page, in order, does what the page says', async () => {
    const blocks = readDocBlocks();
    workDir = mkdtempSync('/tmp/gpa-wt-');
    cg = createTestCgroup('walkthrough');
    const subs: Substitutions = {
      workDir,
      cgroupName: path.basename(cg.path),
      metricsPort: await freePort(),
      listenerPort: await freePort(),
    };
    const listenerPort = subs.listenerPort;
    let hostgaPort = 0;
    const setup = blocks.find((b) => b.kind === 'setup')!.text;
    let emulator: Terminal | undefined;
    let agent: Terminal | undefined;
    let agentPid: number | undefined;
    let lastStdout = '';
    const where = (b: DocBlock, extra = '') => `docs/walkthrough.md:${b.line} (wt:${b.kind})${extra}`;

    const echoCg = await runShell(setup, 'echo "$CG"', subs);
    assert.equal(echoCg.stdout.trim(), cg.path, 'the page computes the cgroup path the test created');

    const runCommands = async (b: DocBlock, attempts: number) => {
      if (!hasExpectations(b)) {
        const r = await runShell(setup, b.text, subs);
        assert.equal(r.code, 0, where(b, `: exit ${r.code}\n${r.stdout}\n${r.stderr}`));
        lastStdout = r.stdout;
        return;
      }
      for (const c of commandsOf(b)) {
        let r = await runShell(setup, c.command, subs);
        for (let i = 1; i < attempts && c.expect !== null && !r.stdout.trim().startsWith(c.expect); i++) {
          await sleep(500);
          r = await runShell(setup, c.command, subs);
        }
        if (c.expect === null) assert.equal(r.code, 0, where(b, `: ${c.command}: exit ${r.code}\n${r.stderr}`));
        else
          assert.ok(
            r.stdout.trim().startsWith(c.expect),
            where(b, `: ${c.command}\n  expected output starting with: ${c.expect}\n  got: ${r.stdout}${r.stderr}`),
          );
        lastStdout = r.stdout;
      }
    };

    for (const b of blocks) {
      switch (b.kind) {
        case 'setup':
        case 'rejected':
        case 'message':
          break; // setup precedes every command; rejected models are walkthrough-model.test.ts's
        case 'file': {
          let text = substitute(b.text, subs);
          if (b.arg === 'agent.json') {
            text = patchAgentConfig(text, subs as Required<Substitutions>, hostgaPort, listenerPort, cg.path);
          }
          writeFileSync(path.join(workDir, b.arg!), text.endsWith('\n') ? text : `${text}\n`);
          break;
        }
        case 'emulator': {
          const cmd = b.text.replace(/:(80|32526)\b/g, ':0');
          assert.notEqual(cmd, b.text, where(b, ': expected the page to bind fixed ports'));
          emulator = startTerminal(setup, cmd, subs);
          terminals.push(emulator);
          const line = await emulator.waitForLine(/"addresses"/);
          const a = JSON.parse(line).addresses;
          subs.imdsPort = a.imds.port;
          subs.wireserverPort = a.wireserver.port;
          hostgaPort = a.hostga.port;
          break;
        }
        case 'agent': {
          agent = startTerminal(setup, b.text, subs);
          terminals.push(agent);
          const ready = JSON.parse(await agent.waitForLine(/"event":"ready"/));
          assert.equal(ready.port, listenerPort);
          agentPid = agent.child.pid;
          break;
        }
        case 'run':
          await runCommands(b, 1);
          break;
        case 'poll':
          // The agent sees a model change at its next poll: retry, bounded (40 × 0.5 s).
          await runCommands(b, 40);
          break;
        case 'output':
          assert.deepEqual(normalizeAuditLines(lastStdout), normalizeAuditLines(b.text), where(b));
          break;
        case 'expect-file': {
          const actual = JSON.parse(readFileSync(path.join(workDir, b.arg!), 'utf8'));
          assert.deepEqual(actual, JSON.parse(b.text), where(b));
          break;
        }
        case 'emulator-log':
          for (const want of b.text.split('\n').filter(Boolean)) {
            for (let i = 0; i < 40 && !emulator!.stderr().includes(want); i++) await sleep(250);
            assert.ok(
              emulator!.stderr().includes(want),
              where(b, `: emulator never logged ${want}\n${emulator!.stderr()}`),
            );
          }
          break;
        case 'cleanup': {
          // The same agent process served Audit, Enforce, the profile and the key reset.
          assert.equal(agent!.child.exitCode, null, `agent exited during the walkthrough:\n${agent!.stderr()}`);
          assert.equal(agent!.child.pid, agentPid);
          assert.equal(await agent!.interrupt(), 0, agent!.stderr());
          assert.equal(await emulator!.interrupt(), 0, emulator!.stderr());
          const r = await runShell(setup, b.text, subs);
          assert.equal(r.code, 0, where(b, `: ${r.stderr}`));
          assert.equal(existsSync(cg.path), false, 'the page removes its cgroup');
          assert.equal(existsSync(workDir), false, 'the page removes its folder');
          break;
        }
        default:
          assert.fail(where(b, ': unknown block kind'));
      }
    }
    for (const k of ['setup', 'emulator', 'agent', 'output', 'expect-file', 'emulator-log', 'cleanup']) {
      assert.ok(
        blocks.some((b) => b.kind === k),
        `the page has a wt:${k} block`,
      );
    }
    // The agent's own log records the model changes it picked up while running.
    assert.match(agent!.stderr(), /acquired and attested a new key [0-9a-f-]+ \(incarnation 2\)/);
  });
});
