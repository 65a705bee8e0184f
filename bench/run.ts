// `npm run bench`: per-request latency and throughput of the agent against the floor (direct to the
// emulator) and a peer (nginx), measured in alternating rounds on this machine. See
// docs/benchmarks.md for what is measured and how to read it.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { type AgentTarget, startAgentTarget } from './macro/agent.js';
import { type BpfStats, startBpfStats } from './macro/bpf-stats.js';
import { chartSvg } from './macro/chart.js';
import { runHops } from './macro/hops.js';
import { measureScenario, type ScenarioResult } from './macro/measure.js';
import { runNewProcess } from './macro/new-process.js';
import { startNginx } from './macro/nginx.js';
import { parseOptions, USAGE } from './macro/options.js';
import { agentSuffix, resultBaseName, writeResults } from './macro/output.js';
import { rssParts, threadActivity } from './macro/proc.js';
import { profileText } from './macro/profile.js';
import { compare, goals, goalTable, table } from './macro/report.js';
import { allScenarios } from './macro/scenarios.js';
import { runSoak } from './macro/soak.js';
import { ensureTools, sysInfo } from './macro/sysinfo.js';
import type { Target } from './macro/target.js';
import { startUpstream } from './macro/upstream.js';
import { writeReporter } from './macro/wrk.js';

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const cleanups: (() => Promise<void> | void)[] = [];

/** The settled idle window: one default key-status poll interval (the agent's only regular timer at idle). */
const IDLE_SETTLED_SEC = 15;

/** CPU (share of a core) and wake-ups per second of all of a process's threads over `sec` of idle. */
async function idleWindow(pid: number, sec: number) {
  const from = threadActivity(pid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, sec * 1000));
  const to = threadActivity(pid);
  const s = (performance.now() - t0) / 1000;
  if (!from || !to) return null;
  return {
    cpuPercent: ((to.runNs - from.runNs) / 1e9 / s) * 100,
    wakeupsPerSec: (to.wakeups - from.wakeups) / s,
    mainWakeupsPerSec: (to.mainWakeups - from.mainWakeups) / s,
  };
}

async function cleanup(): Promise<void> {
  while (cleanups.length) {
    try {
      await cleanups.pop()!();
    } catch (e) {
      log(`cleanup: ${(e as Error).message}`);
    }
  }
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  if (o.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (o.targets.includes('agent') && process.getuid?.() !== 0) {
    log('the agent case needs root (eBPF redirect); measuring direct and nginx only');
    o.targets = o.targets.filter((t) => t !== 'agent');
  }
  if (o.soak && process.getuid?.() !== 0) throw new Error('--soak measures the agent and needs root');
  ensureTools(o.targets.includes('nginx'), o.targets.includes('agent') || o.soak, o.hops, o.newProcess > 0);
  const work = mkdtempSync(path.join(os.tmpdir(), 'gpa-bench-'));
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  const info = sysInfo(o.agentNode);
  const agentOn =
    (info.agentNode !== info.node ? ` (agent on Node ${info.agentNode})` : '') +
    (o.agentClientSockets === 'node' ? ' (agent client sockets: net.Server)' : '');
  log(
    `${info.cpuModel} × ${info.cores}, kernel ${info.kernel}, Node ${info.node}${agentOn}, ${info.wrk}, nginx ${info.nginx}`,
  );

  if (o.soak) {
    const agent = await startAgentTarget(work, {
      builtinUpstream: o.builtinUpstream,
      profile: false,
      node: o.agentNode,
      clientSockets: o.agentClientSockets,
      log,
    });
    cleanups.push(() => agent.stop());
    return runSoak(agent, {
      minutes: o.soakMinutes,
      reporter: writeReporter(work),
      log,
      info,
      clientSockets: o.agentClientSockets,
    });
  }

  const floor = await startUpstream({
    role: 'floor',
    imds: { host: '127.254.169.254', port: 0 },
    builtin: o.builtinUpstream,
  });
  cleanups.push(() => floor.stop());
  const imds = floor.ready.imds;
  const targets: Target[] = [
    {
      name: 'direct',
      base: `http://${imds.host}:${imds.port}`,
      pids: () => [floor.pid],
      mainPid: floor.pid,
      hostPid: floor.pid,
      stop: floor.stop,
    },
  ];
  if (o.targets.includes('nginx')) {
    const nginx = await startNginx(work, imds, floor.pid);
    cleanups.push(() => nginx.stop());
    targets.push(nginx);
  }
  let agent: AgentTarget | undefined;
  let agentMissing: string | undefined;
  if (o.targets.includes('agent')) {
    try {
      agent = await startAgentTarget(work, {
        builtinUpstream: o.builtinUpstream,
        profile: o.profile,
        node: o.agentNode,
        clientSockets: o.agentClientSockets,
        log,
      });
      cleanups.push(() => agent!.stop());
      targets.push(agent);
    } catch (e) {
      agentMissing = (e as Error).message;
      log(`AGENT NOT MEASURED: ${agentMissing}`);
    }
  }
  const scenarios = allScenarios().filter(
    (s) => o.scenarioFilter.length === 0 || o.scenarioFilter.some((f) => s.id.includes(f)),
  );
  if (scenarios.length === 0) throw new Error(`no scenario matches --scenario ${o.scenarioFilter.join(',')}`);
  if (o.newProcess > 0)
    return runNewProcess(targets, {
      requests: o.newProcess,
      rounds: o.rounds,
      write: o.write,
      log,
      machine: info,
      suffix: agentSuffix(info, o.agentClientSockets),
    });
  if (o.hops)
    return runHops(targets, scenarios, {
      traceSec: o.durationSec,
      rounds: o.rounds,
      workDir: work,
      write: o.write,
      log,
      machine: info,
    });

  const bpf: BpfStats | undefined = agent ? await startBpfStats(agent.cgroupPath, log) : undefined;
  if (bpf) cleanups.push(() => bpf.restore());
  // Idle RSS twice: right after start-up (the first snapshot is in), and after 10 s without load,
  // once start-up garbage is collected and V8's memory reducer has run: the state an agent spends
  // its life in. The goal is judged on the settled figure; both are reported.
  // The idle cost (CPU and wake-ups of all the agent's threads) twice: over those first 10 s, which
  // still hold start-up's tail (collections, the memory reducer, the first key poll), and over the
  // 15 s after them, one default key-status poll interval: what an idle agent costs for good.
  const startRssMiB = agent?.rssMiB();
  const startup = agent ? await idleWindow(agent.mainPid, 10) : null;
  const idleRssMiB = agent?.rssMiB();
  const idleRssParts = agent ? rssParts(agent.mainPid) : null;
  const settled = agent ? await idleWindow(agent.mainPid, IDLE_SETTLED_SEC) : null;
  const idleCost = startup && settled ? { ...startup, settled } : null;

  const estimate = scenarios.length * targets.length * (o.rounds * o.durationSec + o.warmupSec);
  log(
    `${scenarios.length} scenarios × ${targets.length} targets × ${o.rounds} rounds of ${o.durationSec}s (~${Math.ceil(estimate / 60)} min)`,
  );
  const reporter = writeReporter(work);
  const results: ScenarioResult[] = [];
  for (const s of scenarios) {
    results.push(await measureScenario(targets, s, { ...o, reporter, log }));
  }
  const ebpf = bpf ? bpf.read() : undefined;
  let agentAfter: Awaited<ReturnType<AgentTarget['finish']>> | undefined;
  if (agent) agentAfter = await agent.finish();

  const comps = results.map(compare);
  const ebpfMax = ebpf?.programs.length ? Math.max(...ebpf.programs.map((p) => p.nsPerRun)) : null;
  // The whole kernel cost of one connect: every program's time (sockops runs several times per
  // connection) divided by the connects, counted by the connect hooks' runs.
  const connects = ebpf?.programs.filter((p) => p.type === 'cgroup_sock_addr').reduce((n, p) => n + p.runCnt, 0) ?? 0;
  const ebpfPerConnect =
    ebpf && connects > 0
      ? {
          ns: ebpf.programs.reduce((t, p) => t + p.runTimeNs, 0) / connects,
          runs: ebpf.programs.reduce((t, p) => t + p.runCnt, 0) / connects,
        }
      : null;
  const goalList = goals(results, comps, idleRssMiB ?? null, ebpfMax);
  const date = new Date();
  const json = {
    schema: 1,
    date: date.toISOString(),
    machine: info,
    config: {
      rounds: o.rounds,
      durationSec: o.durationSec,
      warmupSec: o.warmupSec,
      order: targets.map((t) => t.name),
      loadGenerator: `${info.wrk}; -t1 for 1 client, -t2 for 32; latency = request write to response end (connect excluded)`,
      upstream: o.builtinUpstream ? 'built-in stand-in (NOT the emulator)' : 'lib/emulator',
      quick: o.quick,
    },
    agentNotMeasured: agentMissing ?? null,
    agent: agent
      ? {
          ...agent.describe(),
          rssMiB: {
            atStart: startRssMiB,
            idleBefore: idleRssMiB,
            idleBeforeParts: idleRssParts,
            duringMax: agent.rssMax(),
            after: agentAfter?.rssMiBAfter,
          },
          idle: idleCost,
        }
      : null,
    loadAverageAtEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
    ebpf: ebpf ? { ...ebpf, perConnect: ebpfPerConnect } : null,
    results,
    comparisons: comps,
    goals: goalList,
  };
  const subtitle = [
    `${info.hostname} · ${info.cpuModel} × ${info.cores} · kernel ${info.kernel} · Node ${info.node}${agentOn} · ${date.toISOString().slice(0, 16)}Z`,
    `${info.wrk}; medians of ${o.rounds} alternating rounds × ${o.durationSec} s; 1 or 32 concurrent connections; upstream: ${json.config.upstream}`,
  ];
  process.stdout.write(`\n${table(results, comps)}\n\n`);
  if (agent) {
    const a = json.agent!.rssMiB;
    process.stdout.write(
      `agent RSS MiB: at start ${a.atStart?.toFixed(1)}, idle before (10 s settled) ${a.idleBefore?.toFixed(1)}, max during ${a.duringMax.toFixed(1)}, after ${a.after?.toFixed(1)}\n`,
    );
    if (idleRssParts !== null)
      process.stdout.write(
        `agent idle RSS by kind, MiB: anonymous ${idleRssParts.anonMiB.toFixed(1)}, file-backed ${idleRssParts.fileMiB.toFixed(1)} (the node binary and libraries), shared ${idleRssParts.shmemMiB.toFixed(1)}\n`,
      );
    if (idleCost !== null)
      process.stdout.write(
        `agent at idle, all threads: first 10 s after start ${idleCost.cpuPercent.toFixed(2)}% of a core, ${idleCost.wakeupsPerSec.toFixed(1)} wake-ups/s; ` +
          `the ${IDLE_SETTLED_SEC} s after ${idleCost.settled.cpuPercent.toFixed(3)}%, ${idleCost.settled.wakeupsPerSec.toFixed(1)} wake-ups/s (main thread ${idleCost.settled.mainWakeupsPerSec.toFixed(1)})\n`,
      );
  }
  if (ebpf) {
    for (const p of ebpf.programs)
      process.stdout.write(`eBPF ${p.name} (${p.type}): ${p.runCnt} runs, ${p.nsPerRun.toFixed(0)} ns/run\n`);
    if (ebpfPerConnect !== null)
      process.stdout.write(
        `eBPF per connect (all programs' time / connect4+6 runs): ${ebpfPerConnect.ns.toFixed(0)} ns in ${ebpfPerConnect.runs.toFixed(1)} runs\n`,
      );
  }
  if (agentAfter?.profile) process.stdout.write(`\n${profileText(agentAfter.profile)}\n`);
  if (agentMissing) process.stdout.write(`\nagent not measured: ${agentMissing}\n`);
  process.stdout.write(`\ngoals:\n${goalTable(goalList)}\n`);
  if (o.write) {
    const files = writeResults(
      resultBaseName(date, info.hostname) + agentSuffix(info, o.agentClientSockets),
      json,
      chartSvg(results, comps, subtitle),
    );
    process.stdout.write(`\nwrote ${files.json}\n      ${files.svg}${files.png ? `\n      ${files.png}` : ''}\n`);
  }
  return 0;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    log(`${sig}: stopping`);
    cleanup().finally(() => process.exit(130));
  });
}

main()
  .then(async (code) => {
    await cleanup();
    process.exitCode = code;
  })
  .catch(async (e: unknown) => {
    process.stderr.write(`[bench] ERROR: ${e instanceof Error ? e.message : String(e)}\n`);
    await cleanup();
    process.exitCode = 1;
  });
