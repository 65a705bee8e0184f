import type { Piscina } from 'piscina';
import { type CompileInput, type CompileResult, compilePolicy } from './compile.js';
import { localFileKey, readLocalRuleFile, wantsLocalRules } from './local-rules.js';
import type { SelfTestTask } from './selftest-messages.js';
import { ENDPOINTS, type PolicyProblem } from './types.js';

const WORKER = new URL('./selftest-worker.js', import.meta.url).href;
let ownPool: Piscina | null = null;

/**
 * The pool is created, and piscina loaded, on the first self-test: every thread that imports
 * lib/policy (the data-plane workers too) would otherwise pay piscina's module graph (~1.5 MiB RSS
 * measured in the agent) for a pool only the control plane uses.
 */
async function pool(): Promise<Piscina> {
  if (ownPool === null) {
    const { Piscina } = await import('piscina');
    // One thread is enough: a policy change is rare, and the point is to keep it off the data plane.
    // The thread ends as soon as it is idle (idleTimeout 0): an idle isolate costs ~9 MiB of RSS,
    // while starting one again takes tens of milliseconds once per policy change. No run/wait
    // histograms (recordTiming): nothing reads them, and each holds ~350 KiB of native memory.
    ownPool ??= new Piscina({
      filename: WORKER,
      maxThreads: 1,
      minThreads: 0,
      idleTimeout: 0,
      execArgv: [],
      recordTiming: false,
    });
  }
  return ownPool;
}

/** Stops the module's own worker pool (tests and shutdown). */
export async function closeSelfTestPool(): Promise<void> {
  const p = ownPool;
  ownPool = null;
  await p?.destroy();
}

const asText = (v: unknown): unknown => (Buffer.isBuffer(v) ? v.toString('utf8') : v);

/** Builds a clone-safe task: Buffers become strings, local files are read here (once), not in the worker. */
function taskOf(input: CompileInput): SelfTestTask {
  const rules: CompileInput['rules'] = {};
  for (const ep of ENDPOINTS) if (input.rules[ep] !== undefined) rules[ep] = asText(input.rules[ep]);
  const localRules: NonNullable<CompileInput['localRules']> = {};
  for (const [k, v] of Object.entries(input.localRules ?? {}))
    localRules[k as 'imds'] = Buffer.isBuffer(v) ? v.toString('utf8') : v;
  if (input.localRulesDir) {
    for (const ep of ENDPOINTS) {
      const key = localFileKey(ep);
      const id = input.ruleIds?.[ep] ?? (rules[ep] as { id?: string } | undefined)?.id ?? null;
      if (localRules[key] !== undefined || !wantsLocalRules(id)) continue;
      const r = readLocalRuleFile(input.localRulesDir, key);
      localRules[key] = r.ok ? r.text.toString('utf8') : { error: r.message };
    }
  }
  const { previous: _p, localRulesDir: _d, ...rest } = input;
  return { input: { ...rest, rules, localRules } };
}

/** Runs the evil-twin self-test in a piscina worker; resolves to its problems (empty = passed). */
export async function runSelfTest(input: CompileInput, opts: { pool?: Piscina } = {}): Promise<PolicyProblem[]> {
  return (await (opts.pool ?? (await pool())).run(taskOf(input))) as PolicyProblem[];
}

/**
 * compilePolicy plus the evil-twin self-test off the main thread. A rule set that fails the self-test
 * is treated like a broken document: keep the last good one (same rule id) or deny-all.
 * The control plane publishes the snapshot this resolves to; the data plane never waits for it.
 */
export async function compilePolicyChecked(input: CompileInput, opts: { pool?: Piscina } = {}): Promise<CompileResult> {
  const twins = await runSelfTest({ ...input, extraProblems: [] }, opts);
  return compilePolicy({ ...input, extraProblems: [...(input.extraProblems ?? []), ...twins] });
}
