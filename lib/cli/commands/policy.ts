import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  authorize,
  type CallerClaims,
  canonicalize,
  closeSelfTestPool,
  compilePolicyChecked,
  ENDPOINTS,
  type Endpoint,
  type LoadedRules,
  loadRulesFile,
  type Mode,
  type PolicyProblem,
  renderCanonical,
} from '../../policy/index.js';

export const summary = 'simulate a request against a rules file, or check a rules file';

const USAGE = `usage:
  gpa policy simulate --rules FILE [--endpoint imds|wireserver|hostga] [--mode audit|enforce] --method GET --url URL
                      (--user NAME | --uid N) [--exe PATH] [--group G ...] [--explain] [--json]
  gpa policy check FILE
exit codes: simulate 0 allow, 1 deny (also audit-deny), 2 error; check 0 valid, 1 problems found, 2 error
`;

class UsageError extends Error {}

/** Runs `gpa policy ...`. */
export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if ((sub === 'simulate' || sub === 'check') && (rest.includes('--help') || rest.includes('-h'))) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (sub === 'simulate') return await simulate(rest);
    if (sub === 'check') return await check(rest);
    if (sub === undefined || sub === '--help' || sub === '-h') {
      process.stdout.write(USAGE);
      return sub === undefined ? 2 : 0;
    }
    throw new UsageError(`unknown subcommand '${sub}'`);
  } catch (e) {
    process.stderr.write(`gpa policy: ${(e as Error).message}\n${e instanceof UsageError ? USAGE : ''}`);
    return 2;
  } finally {
    await closeSelfTestPool();
  }
}

function printProblems(problems: PolicyProblem[]): void {
  for (const p of problems) process.stderr.write(`${p.severity} ${p.code} ${p.message}\n`);
}

async function check(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
  if (positionals.length !== 1) throw new UsageError('check takes exactly one FILE');
  const loaded = loadRulesFile(positionals[0]!, 'imds');
  const r = await compilePolicyChecked(loaded.input);
  // compile's fail_closed/kept_previous notes repeat the real problems; show those only.
  const problems = [...loaded.problems, ...r.problems.filter((p) => p.code !== 'fail_closed')];
  printProblems(problems);
  const errors = problems.filter((p) => p.severity === 'error').length;
  const endpoints = Object.keys(loaded.input.rules).join(', ') || 'none';
  process.stdout.write(
    `${positionals[0]}: ${loaded.shape} (${endpoints}): ${errors === 0 ? 'valid' : `${errors} error(s)`}\n`,
  );
  return errors === 0 ? 0 : 1;
}

async function simulate(argv: string[]): Promise<number> {
  const { values: o } = parseArgs({
    args: argv,
    options: {
      rules: { type: 'string' },
      endpoint: { type: 'string' },
      mode: { type: 'string' },
      method: { type: 'string', default: 'GET' },
      url: { type: 'string' },
      user: { type: 'string' },
      uid: { type: 'string' },
      exe: { type: 'string' },
      group: { type: 'string', multiple: true },
      explain: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (!o.rules || !o.url) throw new UsageError('--rules and --url are required');
  const { endpoint: hostEndpoint, target } = splitUrl(o.url);
  const endpoint = (o.endpoint ?? hostEndpoint) as Endpoint | undefined;
  if (!endpoint || !ENDPOINTS.includes(endpoint)) throw new UsageError('--endpoint must be imds, wireserver or hostga');
  if (o.mode !== undefined && o.mode !== 'audit' && o.mode !== 'enforce' && o.mode !== 'disabled')
    throw new UsageError('--mode must be disabled, audit or enforce');
  const loaded: LoadedRules = loadRulesFile(o.rules, endpoint, o.mode as Mode | undefined);
  const compiled = await compilePolicyChecked(loaded.input);
  const problems = [...loaded.problems, ...compiled.problems];
  if (problems.some((p) => p.severity === 'error')) {
    printProblems(problems);
    throw new Error(`${o.rules} is not a valid policy; run gpa policy check ${o.rules}`);
  }
  const caller = callerFrom(o.user, o.uid, o.exe, o.group ?? []);
  const trace: string[] = [];
  const decision = authorize(compiled.snapshot, { endpoint, method: o.method, rawTarget: target }, caller, trace);
  const canon = canonicalize(target);
  const canonical = canon.ok ? renderCanonical(canon) : null;
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ decision, canonical, target, trace: o.explain ? trace : undefined })}\n`);
  } else {
    if (o.explain) {
      const ep = compiled.snapshot.endpoints[endpoint];
      process.stdout.write(`target     ${target}\ncanonical  ${canonical ?? `refused (${decision.code})`}\n`);
      process.stdout.write(`endpoint   ${endpoint} mode ${ep.mode} rule id ${ep.ruleId ?? '-'} (${ep.state})\n`);
      process.stdout.write(
        `caller     uid ${caller.uid} user ${caller.userName ?? '-'} groups ${caller.groups.map((g) => g.name).join(',') || '-'} exe ${caller.exePath ?? '-'}\n`,
      );
      for (const line of trace) process.stdout.write(`  ${line}\n`);
    }
    const who = [
      ['privilege', decision.privilege],
      ['role', decision.role],
      ['identity', decision.identity],
    ]
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    process.stdout.write(`${decision.outcome} ${decision.code}${who ? ` ${who}` : ''}\n`);
  }
  return decision.outcome === 'allow' ? 0 : 1;
}

/** Keeps the target byte for byte: WHATWG URL parsing would resolve dot segments and hide the attack. */
export function splitUrl(url: string): { endpoint?: Endpoint; target: string } {
  const m = /^http:\/\/([^/?#]*)(.*)$/i.exec(url);
  if (!m) return { target: url };
  const authority = m[1]!.toLowerCase();
  const rest = m[2]!;
  const target = rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest;
  const [host, port] = authority.split(':');
  if (host === '169.254.169.254') return { endpoint: 'imds', target };
  if (host === '168.63.129.16') return { endpoint: port === '32526' ? 'hostga' : 'wireserver', target };
  return { target };
}

/** Builds caller claims from flags, filling the other half of user/uid from /etc/passwd when possible. */
function callerFrom(
  user: string | undefined,
  uidText: string | undefined,
  exe: string | undefined,
  groups: string[],
): CallerClaims {
  if (user === undefined && uidText === undefined) throw new UsageError('give --user NAME or --uid N');
  if (uidText !== undefined && !/^\d+$/.test(uidText)) throw new UsageError('--uid must be a non-negative integer');
  const passwd = readTable('/etc/passwd');
  const byName = passwd.find((f) => f[0] === user);
  const byUid = passwd.find((f) => f[2] === uidText);
  const uid = uidText !== undefined ? Number(uidText) : byName ? Number(byName[2]) : -1;
  const userName = user ?? byUid?.[0] ?? null;
  const gid = Number((byName ?? byUid)?.[3] ?? -1);
  const primary = readTable('/etc/group').find((f) => f[2] === String(gid))?.[0];
  const names = [...new Set([...(primary ? [primary] : []), ...groups])];
  return {
    pid: 0,
    uid,
    gid,
    userName,
    groups: names.map((name) => ({ gid: -1, name })),
    exePath: exe ?? null,
    processName: exe ? path.basename(exe) : '',
    cmdline: '',
    cgroupId: 0n,
  };
}

function readTable(file: string): string[][] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .map((l) => l.split(':'));
  } catch {
    return [];
  }
}
