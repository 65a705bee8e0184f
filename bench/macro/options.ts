// Command-line options of `npm run bench -- [options]`.
import type { TargetName } from './target.js';

export interface BenchOptions {
  quick: boolean;
  soak: boolean;
  soakMinutes: number;
  durationSec: number;
  rounds: number;
  warmupSec: number;
  scenarioFilter: string[];
  targets: TargetName[];
  builtinUpstream: boolean;
  profile: boolean;
  /** Trace one client's requests hop by hop with perf instead of the latency rounds. */
  hops: boolean;
  /** A new curl process per request instead of the latency rounds (requests per target and round). */
  newProcess: number;
  /** Node binary the agent runs on (null: the bench's own); everything else stays on the bench's. */
  agentNode: string | null;
  /** The agent's `clientSockets` (native: the addon's client-socket I/O; node: net.Server). */
  agentClientSockets: 'native' | 'node';
  write: boolean;
  help: boolean;
}

export const USAGE = `usage: npm run bench -- [options]
  --quick               ~2 minutes: instance path only, 2 rounds of 2 s
  --soak                10-minute soak of the agent: RSS and open fds over time; fails on > 5% growth
  --soak-minutes N      soak length (default 10)
  --scenario A,B        only scenarios whose id contains one of these (e.g. ka-c1,newconn)
  --duration S          seconds per measurement (default 3)
  --rounds N            rounds per scenario (default 5)
  --targets LIST        subset of direct,nginx,agent (default: all three)
  --builtin-upstream    stand-in upstream instead of lib/emulator (harness development only)
  --profile             run the agent under V8's --prof and print where its CPU goes
  --hops                per-hop latency instead of the latency rounds: 1 client, traced with perf
                        (wake-ups, proxy work, host work), median µs per hop and target over 3
                        alternating rounds of 2 s (default scenarios instance-ka-c1 and
                        instance-newconn-c1; needs perf: apt-get install linux-perf)
  --new-process [N]     a new client process per request instead of the latency rounds: N curl
                        processes (default 200) per target and round, one after another, 3
                        alternating rounds; curl's own time per request (instance path)
  --agent-node PATH     run the agent on this node binary (e.g. another major version); the
                        emulators, nginx and the harness stay on the bench's own node
  --agent-client-sockets native|node
                        the agent's client sockets: the addon's (default) or net.Server's
  --no-write            do not write bench/results/*.json and the chart
`;

export function parseOptions(argv: string[]): BenchOptions {
  const o: BenchOptions = {
    quick: false,
    soak: false,
    soakMinutes: 10,
    durationSec: 3,
    rounds: 5,
    warmupSec: 2,
    scenarioFilter: [],
    targets: ['direct', 'nginx', 'agent'],
    builtinUpstream: false,
    profile: false,
    hops: false,
    newProcess: 0,
    agentNode: null,
    agentClientSockets: 'native',
    write: true,
    help: false,
  };
  let explicitDuration = false;
  let explicitRounds = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    const num = (): number => {
      const v = Number(value());
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a} needs a positive number\n${USAGE}`);
      return v;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--soak') o.soak = true;
    else if (a === '--soak-minutes') o.soakMinutes = num();
    else if (a === '--scenario') o.scenarioFilter = value().split(',').filter(Boolean);
    else if (a === '--duration') {
      o.durationSec = num();
      explicitDuration = true;
    } else if (a === '--rounds') {
      o.rounds = Math.round(num());
      explicitRounds = true;
    } else if (a === '--targets') o.targets = parseTargets(value());
    else if (a === '--builtin-upstream') o.builtinUpstream = true;
    else if (a === '--profile') o.profile = true;
    else if (a === '--hops') o.hops = true;
    else if (a === '--new-process') {
      const next = argv[i + 1];
      o.newProcess = next !== undefined && /^\d+$/.test(next) ? Math.max(1, Number(argv[++i])) : 200;
    } else if (a === '--agent-node') o.agentNode = value();
    else if (a === '--agent-client-sockets') {
      const v = value();
      if (v !== 'native' && v !== 'node')
        throw new Error(`--agent-client-sockets is native or node (got ${v})\n${USAGE}`);
      o.agentClientSockets = v;
    } else if (a === '--no-write') o.write = false;
    else if (a === '--help' || a === '-h') o.help = true;
    else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  if (o.quick) {
    if (!explicitDuration) o.durationSec = 2;
    if (!explicitRounds) o.rounds = 2;
    o.warmupSec = 1;
    if (o.scenarioFilter.length === 0) o.scenarioFilter = ['instance-'];
  }
  if (o.newProcess > 0) {
    if (o.soak || o.hops) throw new Error(`--new-process, --hops and --soak are separate runs\n${USAGE}`);
    if (!explicitRounds) o.rounds = 3;
  }
  if (o.hops) {
    if (o.soak) throw new Error(`--hops and --soak are separate runs\n${USAGE}`);
    if (o.scenarioFilter.length === 0) o.scenarioFilter = ['instance-ka-c1', 'instance-newconn-c1'];
    if (!explicitDuration) o.durationSec = 2;
    if (!explicitRounds) o.rounds = 3;
  }
  return o;
}

function parseTargets(list: string): TargetName[] {
  const names = list.split(',').filter(Boolean);
  for (const n of names) {
    if (n !== 'direct' && n !== 'nginx' && n !== 'agent')
      throw new Error(`unknown target '${n}' (direct, nginx, agent)`);
  }
  if (!names.includes('direct')) throw new Error('--targets must include direct: added latency is measured against it');
  return names as TargetName[];
}
