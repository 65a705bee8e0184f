import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { validateConfig } from '../../agent/index.js';
import { discoverCgroup2Root } from '../../redirector/index.js';
import {
  type CheckResult,
  checkBpfAttached,
  checkClockSkew,
  checkConfig,
  checkKeyFolder,
  checkLoopbackOnly,
  checkPins,
  DEFAULT_CONFIG_PATH,
  httpGet,
  type Level,
  readOperatorConfig,
} from '../../status/index.js';

export const summary = 'read-only health checks in under a second: green/yellow/red, --json';

const HELP = `usage: gpa doctor [--config FILE] [--json]

Read-only checks: config, agent answering, listener and metrics bound to loopback only, eBPF programs
attached (one of each, no foreign programs on the hooks), pins, key folder modes, clock skew against
the host date, status.json freshness. Exit 0 all green, 1 something yellow, 2 something red.
`;

const BUDGET_MS = 700;

/** `gpa doctor` */
export async function run(argv: string[]): Promise<number> {
  let v: { config?: string; json?: boolean; help?: boolean };
  try {
    v = parseArgs({
      args: argv,
      options: { config: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    }).values;
  } catch (err) {
    process.stderr.write(`gpa doctor: ${(err as Error).message}\n${HELP}`);
    return 2;
  }
  if (v.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const cfg = readOperatorConfig(v.config ?? DEFAULT_CONFIG_PATH);
  let cgroupPath = cfg.cgroupPath;
  if (!cgroupPath) {
    try {
      cgroupPath = discoverCgroup2Root() ?? null;
    } catch {
      cgroupPath = null;
    }
  }
  const [provision, metrics, bpf] = await Promise.all([
    httpGet(cfg.listenerAddress, cfg.listenerPort, '/provision', { Metadata: 'true' }, BUDGET_MS),
    httpGet(cfg.metricsAddress, cfg.metricsPort, '/metrics', {}, BUDGET_MS),
    cgroupPath
      ? checkBpfAttached(cgroupPath, BUDGET_MS)
      : Promise.resolve<CheckResult[]>([
          { check: 'eBPF attached', level: 'red', message: 'no cgroup v2 mount found; the redirector needs cgroup v2' },
        ]),
  ]);
  const agentUp = provision?.status === 200;
  let provisionMsg = 'agent not answering on its listener';
  if (agentUp) {
    try {
      const p = JSON.parse(provision.body) as { finished: boolean; errorMessage: string };
      provisionMsg = p.finished
        ? p.errorMessage
          ? `provisioned with errors: ${p.errorMessage}`
          : 'provisioned'
        : `provisioning not finished: ${p.errorMessage}`;
    } catch {
      provisionMsg = 'agent answered /provision with something unreadable';
    }
  }
  const results: CheckResult[] = [
    configCheck(cfg),
    {
      check: 'agent',
      level: agentUp ? (provisionMsg === 'provisioned' ? 'green' : 'yellow') : 'red',
      message: agentUp
        ? provisionMsg
        : `${provisionMsg} (${cfg.listenerAddress}:${cfg.listenerPort}); 'systemctl status azure-proxy-agent', 'journalctl -u azure-proxy-agent'`,
    },
    checkLoopbackOnly('listener loopback-only', cfg.listenerPort, true),
    checkLoopbackOnly('metrics loopback-only', cfg.metricsPort, false),
    ...bpf,
    checkPins(cfg.pinDir, agentUp),
    checkKeyFolder(cfg.latchKeyFolder),
    checkClockSkew(metrics?.status === 200 ? metrics.body : null),
    statusFileCheck(path.join(cfg.logFolder, 'status.json')),
  ];
  const worst: Level = results.some((r) => r.level === 'red')
    ? 'red'
    : results.some((r) => r.level === 'yellow')
      ? 'yellow'
      : 'green';
  if (v.json) {
    process.stdout.write(`${JSON.stringify({ overall: worst, checks: results }, null, 2)}\n`);
  } else {
    const tty = process.stdout.isTTY;
    const tag: Record<Level, string> = tty
      ? { green: '\x1b[32m[ ok ]\x1b[0m', yellow: '\x1b[33m[warn]\x1b[0m', red: '\x1b[31m[FAIL]\x1b[0m' }
      : { green: '[ ok ]', yellow: '[warn]', red: '[FAIL]' };
    for (const r of results) process.stdout.write(`${tag[r.level]} ${r.check}: ${r.message}\n`);
  }
  return worst === 'green' ? 0 : worst === 'yellow' ? 1 : 2;
}

/** The file parses (operator view) and passes the agent's own validation, so the agent will start with it. */
function configCheck(cfg: ReturnType<typeof readOperatorConfig>): CheckResult {
  const base = checkConfig(cfg);
  if (base.level === 'red' || cfg.source === null) return base;
  const { errors, warnings } = validateConfig(cfg.raw);
  if (errors.length > 0)
    return {
      check: 'config',
      level: 'red',
      message: `${cfg.source}: ${errors.join('; ')}; the agent will not start with it`,
    };
  if (warnings.length > 0)
    return { check: 'config', level: 'yellow', message: `${cfg.source}: ${warnings.join('; ')}` };
  return base;
}

function statusFileCheck(file: string): CheckResult {
  try {
    const doc = JSON.parse(readFileSync(file, 'utf8')) as {
      timestamp?: string;
      proxyAgentStatus?: { status?: string };
    };
    const age = (Date.now() - Date.parse(doc.timestamp ?? '')) / 1000;
    if (!Number.isFinite(age) || age > 180)
      return {
        check: 'status.json',
        level: 'yellow',
        message: `${file} is stale (${Number.isFinite(age) ? `${age.toFixed(0)} s old` : 'no timestamp'}); it is rewritten every 60 s while the agent runs`,
      };
    const s = doc.proxyAgentStatus?.status;
    return {
      check: 'status.json',
      level: s === 'SUCCESS' ? 'green' : 'yellow',
      message: `${file}: ${s ?? 'no status'} (${age.toFixed(0)} s old)`,
    };
  } catch {
    return { check: 'status.json', level: 'yellow', message: `${file} missing or unreadable` };
  }
}
