/**
 * Kernel cost of the redirector's BPF programs per connect, from the kernel's own run-time
 * statistics (run_time_ns / run_cnt per program). A Python client inside a throwaway child cgroup
 * makes a bounded number of sequential TCP connects through the redirect to a loopback listener in
 * this process, which looks each one up (consuming it, as the agent does) and closes.
 *
 *   node dist/bench/micro/ebpf-connect.js [--connects 2000] [--rounds 3] [--thrash 0] [--conn-map-size N]
 *        [--scenarios redirect4,mapped6,redirect6,direct,other] [--object build/bpf/redirect.bpf.o] [--json]
 *
 * Scenarios: redirect4 (AF_INET to a rule), mapped6 (AF_INET6 to ::ffff:<rule>), redirect6 (native
 * IPv6 rule on ::1), direct (straight to the listener, not redirected: not attributed), other (a
 * loopback server no rule points to: the early-exit path every other connect takes). --object
 * measures another build of the programs (GPA_ADDON_PATH another addon); --thrash MB makes the
 * client read that much memory before each connect, so the programs run with cold caches and TLB
 * as they do on a busy machine (the agent bench: ~0.5 ms of JavaScript between two connects); --no-verify skips the check that every redirected connect
 * was attributed (for scratch variants that leave a part out). Statistics are switched on with
 * BPF_ENABLE_STATS (a file descriptor held by a helper process, so the sysctl
 * kernel.bpf_stats_enabled is never touched and a crash cannot leave statistics on). Root only;
 * traffic stays on loopback (127.254.169.254 is a loopback alias). Median over rounds is reported.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { parseArgs } from 'node:util';
import * as redirector from '../../lib/redirector/index.js';
import { createBenchCgroup } from '../macro/cgroup.js';

const PYTHON = '/usr/bin/python3';
const ALIAS = '127.254.169.254';

// connect, read until the listener closes, close; one line at the end so the parent knows it finished
const CLIENT = `
import socket, sys
host, port, fam, n, thrash = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
af = socket.AF_INET6 if fam == 6 else socket.AF_INET
junk = bytearray(thrash)
for _ in range(n):
    junk.find(1)  # reads every cache line: what a busy machine does to caches and TLB between connects
    s = socket.socket(af, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect((host, port))
    while s.recv(64):
        pass
    s.close()
print("done", flush=True)
`;

// BPF_ENABLE_STATS(BPF_STATS_RUN_TIME) returns an fd; statistics stay on while any such fd is open.
const STATS_HOLDER = `
import ctypes, os, sys
nr = {"x86_64": 321, "aarch64": 280}[os.uname().machine]
libc = ctypes.CDLL(None, use_errno=True)
attr = (ctypes.c_uint32 * 2)(0, 0)
fd = libc.syscall(nr, 32, ctypes.byref(attr), ctypes.sizeof(attr))
print("ok" if fd >= 0 else "error " + os.strerror(ctypes.get_errno()), flush=True)
sys.stdin.read()
`;

interface ProgCounters {
  runCnt: number;
  runTimeNs: number;
}

function counters(id: number): ProgCounters {
  const p = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show', 'id', String(id)], { encoding: 'utf8' })) as {
    run_cnt?: number;
    run_time_ns?: number;
  };
  return { runCnt: p.run_cnt ?? 0, runTimeNs: p.run_time_ns ?? 0 };
}

async function holdStats(): Promise<{ release(): void }> {
  const child = spawn(PYTHON, ['-c', STATS_HOLDER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  if (!line.toString().startsWith('ok')) {
    child.kill();
    throw new Error(`BPF_ENABLE_STATS failed: ${line.toString().trim()} (run as root on Linux 5.8+)`);
  }
  return { release: () => child.stdin.end() };
}

interface Listener {
  port: number;
  hits: number;
  close(): Promise<void>;
}

async function listen(host: string): Promise<Listener> {
  const l = { port: 0, hits: 0, close: async () => {} };
  const server = net.createServer((s) => {
    s.on('error', () => {});
    const origin = redirector.lookupConnection(
      { address: s.remoteAddress ?? '', port: s.remotePort ?? 0 },
      { address: s.localAddress ?? '', port: s.localPort ?? 0 },
    );
    if (origin) l.hits++;
    s.end('k');
  });
  server.listen({ host, port: 0, backlog: 1024 });
  await once(server, 'listening');
  l.port = (server.address() as net.AddressInfo).port;
  l.close = () => new Promise((resolve) => server.close(() => resolve()));
  return l;
}

interface Scenario {
  name: string;
  host: string;
  port: number;
  family: 4 | 6;
  listener: Listener;
  redirected: boolean;
}

interface Row {
  program: string;
  runsPerConnect: number;
  nsPerRun: number;
  nsPerConnect: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      connects: { type: 'string', default: '2000' },
      rounds: { type: 'string', default: '3' },
      scenarios: { type: 'string', default: 'redirect4,mapped6,redirect6,direct,other' },
      object: { type: 'string' },
      json: { type: 'boolean', default: false },
      thrash: { type: 'string', default: '0' },
      'conn-map-size': { type: 'string' },
      'no-verify': { type: 'boolean', default: false },
    },
  });
  const connects = Math.min(20000, Math.max(1, Number(values.connects)));
  const rounds = Math.min(20, Math.max(1, Number(values.rounds)));
  const thrashBytes = Math.min(64, Math.max(0, Number(values.thrash))) * 1024 * 1024;
  const p = redirector.probe();
  if (!p.supported) {
    process.stderr.write(`eBPF not available: ${p.reasons.join('; ')}\n`);
    return 1;
  }
  const cleanups: (() => unknown)[] = [];
  const results: Record<string, Row[]> = {};
  try {
    const cg = createBenchCgroup();
    cleanups.push(() => cg.remove());
    const v4 = await listen('127.0.0.1');
    const v6 = await listen('::1');
    const plain = await listen('127.0.0.1');
    cleanups.push(() => plain.close());
    cleanups.push(
      () => v4.close(),
      () => v6.close(),
    );
    const st = redirector.start({
      cgroupPath: cg.path,
      exemptSelf: true,
      ...(values['conn-map-size'] ? { connMapSize: Number(values['conn-map-size']) } : {}),
      ...(values.object ? { objectPath: values.object } : {}),
    });
    cleanups.push(() => redirector.stop());
    if (st.state !== 'running') throw new Error(`redirector ${st.state}: ${st.lastError?.message ?? ''}`);
    const dstPort = 20000 + Math.floor(Math.random() * 40000);
    redirector.setRule({ dst: ALIAS, dstPort, proxy: '127.0.0.1', proxyPort: v4.port });
    redirector.setRule({ dst: '::1', dstPort, proxy: '::1', proxyPort: v6.port });
    const all: Scenario[] = [
      { name: 'redirect4', host: ALIAS, port: dstPort, family: 4, listener: v4, redirected: true },
      { name: 'mapped6', host: `::ffff:${ALIAS}`, port: dstPort, family: 6, listener: v4, redirected: true },
      { name: 'redirect6', host: '::1', port: dstPort, family: 6, listener: v6, redirected: true },
      { name: 'direct', host: '127.0.0.1', port: v4.port, family: 4, listener: v4, redirected: false },
      { name: 'other', host: '127.0.0.1', port: plain.port, family: 4, listener: plain, redirected: false },
    ];
    const wanted = values.scenarios.split(',');
    const stats = await holdStats();
    cleanups.push(() => stats.release());
    for (const sc of all.filter((s) => wanted.includes(s.name))) {
      const perRound: Row[][] = [];
      // one unmeasured pass first: the first connects after attach pay for cold maps and page tables
      const clientArgs = [PYTHON, '-c', CLIENT, sc.host, String(sc.port), String(sc.family)];
      await runIn(cg.path, [...clientArgs, String(Math.min(connects, 200)), String(thrashBytes)]);
      for (let r = 0; r < rounds; r++) {
        const before = new Map(st.programs.map((pr) => [pr.name, counters(pr.id)]));
        const hits0 = sc.listener.hits;
        const res = await runIn(cg.path, [...clientArgs, String(connects), String(thrashBytes)]);
        if (res.code !== 0) throw new Error(`client failed in ${sc.name}: ${res.stderr}`);
        const hits = sc.listener.hits - hits0;
        if (sc.redirected && !values['no-verify'] && hits !== connects)
          throw new Error(`${sc.name}: ${hits}/${connects} connects attributed`);
        perRound.push(
          st.programs.map((pr) => {
            const a = before.get(pr.name)!;
            const b = counters(pr.id);
            const runs = b.runCnt - a.runCnt;
            const ns = b.runTimeNs - a.runTimeNs;
            return {
              program: pr.name,
              runsPerConnect: runs / connects,
              nsPerRun: runs ? ns / runs : 0,
              nsPerConnect: ns / connects,
            };
          }),
        );
      }
      results[sc.name] = st.programs.map((pr, i) => ({
        program: pr.name,
        runsPerConnect: median(perRound.map((rows) => rows[i]!.runsPerConnect)),
        nsPerRun: median(perRound.map((rows) => rows[i]!.nsPerRun)),
        nsPerConnect: median(perRound.map((rows) => rows[i]!.nsPerConnect)),
      }));
    }
  } finally {
    for (const c of cleanups.reverse()) await c();
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ connects, rounds, results }, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(
    `${connects} connects x ${rounds} rounds, thrash ${values.thrash} MB, median per round (BPF_ENABLE_STATS on)\n`,
  );
  for (const [name, rows] of Object.entries(results)) {
    const total = rows.reduce((s, r) => s + r.nsPerConnect, 0);
    process.stdout.write(`${name}: total ${total.toFixed(0)} ns per connect\n`);
    for (const r of rows) {
      process.stdout.write(
        `  ${r.program.padEnd(9)} ${r.runsPerConnect.toFixed(2).padStart(5)} runs/connect  ${r.nsPerRun.toFixed(0).padStart(5)} ns/run  ${r.nsPerConnect.toFixed(0).padStart(5)} ns/connect\n`,
      );
    }
  }
  return 0;
}

// The bench cgroup has no run helper: move a shell into it, then exec the client (bounded: 120 s).
async function runIn(cgroupPath: string, argv: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroupPath, ...argv], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  child.stdout.resume();
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stderr };
}

process.exitCode = await main();
