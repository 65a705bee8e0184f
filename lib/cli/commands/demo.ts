import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { controlRequest } from '../../emulator/index.js';
import { discoverCgroup2Root, probe } from '../../redirector/index.js';
import {
  checkBpfAttached,
  createCgroup,
  createSealedNetns,
  type DemoSandbox,
  deleteNetns,
  demoHostSettings,
  demoRequests,
  destroyCgroup,
  formatAuditRecord,
  printTryIt,
  readAuditRecords,
  readDemoState,
  removeDemoState,
  sandboxArgv,
  writeDemoState,
} from '../../status/index.js';

export const summary =
  'what `npm start` runs: the agent and the host emulator in a sealed sandbox, with sample requests';

const pkgBin = new URL('../../../../bin/gpa.mjs', import.meta.url).pathname;

/** Undo steps, run in reverse order on exit, Ctrl-C or failure. */
class Cleanup {
  private readonly steps: { what: string; fn: () => void | Promise<void> }[] = [];
  add(what: string, fn: () => void | Promise<void>): void {
    this.steps.push({ what, fn });
  }
  async run(): Promise<void> {
    while (this.steps.length) {
      const s = this.steps.pop()!;
      try {
        await s.fn();
      } catch (err) {
        process.stderr.write(`cleanup: ${s.what}: ${(err as Error).message}\n`);
      }
    }
  }
}

function stopChild(c: ChildProcess, ms = 5000): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => c.kill('SIGKILL'), ms);
    c.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    c.kill('SIGTERM');
  });
}

function preflight(): string | null {
  if (process.getuid?.() !== 0) return "the demo needs root (network namespace, cgroup, eBPF): run 'sudo npm start'";
  if (
    spawnSync('sh', ['-c', 'command -v ip && command -v curl && command -v setpriv'], { stdio: 'ignore' }).status !== 0
  )
    return 'the demo needs ip (iproute2), curl and setpriv (util-linux): apt-get install -y iproute2 curl util-linux';
  if (!existsSync(new URL('./run.js', import.meta.url))) return "this build has no 'gpa run' (the agent process) yet";
  const p = probe();
  if (!p.supported) return `eBPF redirect is not available here: ${p.reasons.join('; ')}`;
  if (readDemoState()) return "another demo is already running ('gpa exec' talks to it); stop it first";
  return null;
}

/** `gpa demo [--once]` */
export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(
      'usage: gpa demo [--once]\n\nRuns the emulator and the agent in a sealed network namespace on the real metadata\naddresses, shows allowed, denied and audited requests, then waits for Ctrl-C (--once: exit\nafter the show). Needs root.\n',
    );
    return 0;
  }
  const once = argv.includes('--once');
  const problem = preflight();
  if (problem) {
    process.stderr.write(`gpa demo: ${problem}\n`);
    return 1;
  }
  const cleanup = new Cleanup();
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return code;
    stopping = true;
    process.stdout.write('\ncleaning up: agent, emulator, pins, cgroup, network namespace...\n');
    await cleanup.run();
    process.stdout.write('done; nothing left behind.\n');
    return code;
  };
  try {
    const id = `gpa-demo-${process.pid}`;
    const stateDir = mkdtempSync(path.join(tmpdir(), `${id}-`));
    cleanup.add('state folder', () => rmSync(stateDir, { recursive: true, force: true }));
    createSealedNetns(id);
    cleanup.add('network namespace', () => deleteNetns(id));
    const root = discoverCgroup2Root();
    if (!root) throw new Error('no cgroup v2 mount found');
    const cgroup = createCgroup(root, id);
    cleanup.add('cgroup', () => destroyCgroup(cgroup));
    const pinDir = `/sys/fs/bpf/${id}`;
    cleanup.add('pins', () => rmSync(pinDir, { recursive: true, force: true }));
    const sandbox: DemoSandbox = {
      netns: id,
      cgroup,
      pinDir,
      stateDir,
      ownerPid: process.pid,
      listenerPort: 3080,
      metricsPort: 9464,
    };

    // 1. The host emulator on the real metadata addresses, inside the sealed namespace.
    const sock = path.join(stateDir, 'emulator.sock');
    const emuLog = openSync(path.join(stateDir, 'emulator.log'), 'a');
    const emulator = spawn(
      'nsenter',
      [
        `--net=/run/netns/${id}`,
        '--',
        process.execPath,
        pkgBin,
        'emulator',
        '--imds',
        '169.254.169.254:80',
        '--wireserver',
        '168.63.129.16:80',
        '--hostga',
        '168.63.129.16:32526',
        '--control-socket',
        sock,
      ],
      { stdio: ['ignore', 'pipe', emuLog] },
    );
    cleanup.add('emulator', () => stopChild(emulator));
    await firstLine(emulator, 15_000, 'emulator');
    await controlRequest(`unix:${sock}`, 'POST', '/configure', demoHostSettings());

    // 2. The agent, attached to the demo cgroup only, listening inside the namespace.
    const config = path.join(stateDir, 'proxy-agent.json');
    writeFileSync(
      config,
      JSON.stringify(
        {
          cgroupPath: cgroup,
          pinDir,
          logFolder: path.join(stateDir, 'log'),
          latchKeyFolder: path.join(stateDir, 'keys'),
          endpoints: {
            imds: { address: '169.254.169.254', port: 80 },
            wireserver: { address: '168.63.129.16', port: 80 },
            hostga: { address: '168.63.129.16', port: 32526 },
          },
          listener: { address: '127.0.0.1', port: sandbox.listenerPort },
          metrics: { address: '127.0.0.1', port: sandbox.metricsPort },
        },
        null,
        2,
      ),
    );
    const agentLog = openSync(path.join(stateDir, 'agent.log'), 'a');
    const agent = spawn(
      'nsenter',
      [`--net=/run/netns/${id}`, '--', process.execPath, pkgBin, 'run', '--config', config],
      {
        stdio: ['ignore', agentLog, agentLog],
      },
    );
    cleanup.add('agent', () => stopChild(agent, 10_000));
    process.stdout.write(`starting the agent (log: ${path.join(stateDir, 'agent.log')})...\n`);
    const ready = spawnSync(
      'nsenter',
      [`--net=/run/netns/${id}`, '--', process.execPath, pkgBin, '--status', '--wait', '60', '--config', config],
      { encoding: 'utf8' },
    );
    if (ready.status !== 0) {
      const tail = readFileSync(path.join(stateDir, 'agent.log'), 'utf8').split('\n').slice(-15).join('\n');
      throw new Error(
        `the agent did not finish provisioning: ${ready.stdout}${ready.stderr}\nlast lines of the agent log:\n${tail}`,
      );
    }
    // Real metadata addresses only after the redirect is verifiably attached to the demo cgroup.
    const attached = await checkBpfAttached(cgroup, 2000);
    if (attached[0]?.level !== 'green') throw new Error(`redirect not attached to ${cgroup}: ${attached[0]?.message}`);
    writeDemoState(sandbox);
    cleanup.add('demo state file', () => removeDemoState());

    // 3. A few requests: allowed, audited, denied.
    process.stdout.write('\nsample requests (run inside the sandbox, as different users):\n');
    for (const r of demoRequests()) {
      const user = r.user === 'root' ? null : { uid: 65534, gid: 65534, name: 'nobody' };
      const argv2 = sandboxArgv(sandbox, user, [
        'curl',
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--max-time',
        '5',
        '-H',
        'Metadata: true',
        r.url,
      ]);
      const res = spawnSync(argv2[0]!, argv2.slice(1), { encoding: 'utf8' });
      process.stdout.write(
        `  ${r.user.padEnd(6)} ${r.url.padEnd(78)} -> HTTP ${res.stdout.trim() || '???'}  (${r.expect})\n`,
      );
    }
    await new Promise((r) => setTimeout(r, 1500)); // audit records are written in batches
    const { records } = readAuditRecords(path.join(stateDir, 'log'));
    process.stdout.write('\nwhat the audit log recorded:\n');
    for (const rec of records.filter((x) => x.endpoint !== null).slice(-8))
      process.stdout.write(`  ${formatAuditRecord(rec)}\n`);
    const scrape = spawnSync(
      'nsenter',
      [
        `--net=/run/netns/${id}`,
        '--',
        'curl',
        '-s',
        '--max-time',
        '5',
        `http://127.0.0.1:${sandbox.metricsPort}/metrics`,
      ],
      { encoding: 'utf8' },
    );
    process.stdout.write(
      `\nwhat /metrics counted (http://127.0.0.1:${sandbox.metricsPort}/metrics inside the sandbox):\n`,
    );
    for (const line of scrape.stdout.split('\n').filter((l) => /^gpa_(requests|denials)_total\{/.test(l)))
      process.stdout.write(`  ${line}\n`);
    printTryIt(sandbox, config);
    if (once) return await stop(0);

    process.stdout.write('\nPress Ctrl-C to stop the demo and remove everything it created.\n');
    return await new Promise<number>((resolve) => {
      const onSignal = () => void stop(0).then(resolve);
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      agent.once('exit', (code) => {
        if (stopping) return;
        process.stderr.write(`the agent exited (code ${code}); see ${path.join(stateDir, 'agent.log')}\n`);
        void stop(1).then(resolve);
      });
    });
  } catch (err) {
    process.stderr.write(`gpa demo: ${(err as Error).message}\n`);
    return stop(1);
  }
}

function firstLine(c: ChildProcess, timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`${what} did not start within ${timeoutMs} ms`)), timeoutMs);
    c.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl !== -1) {
        clearTimeout(t);
        resolve(buf.slice(0, nl));
      }
    });
    c.once('exit', (code) => reject(new Error(`${what} exited early (code ${code})`)));
  });
}
