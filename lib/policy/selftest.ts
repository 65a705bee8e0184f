import { createRequire } from 'node:module';
import type { Piscina } from 'piscina';
import { type CompileInput, type CompileResult, compilePolicy } from './compile.js';
import { localFileKey, readLocalRuleFile, wantsLocalRules } from './local-rules.js';
import type { SelfTestTask } from './selftest-messages.js';
import { ENDPOINTS, type PolicyProblem } from './types.js';

const WORKER = new URL('./selftest-worker.js', import.meta.url).href;
const require = createRequire(import.meta.url);
let ownPool: Piscina | null = null;

/**
 * The pool is created, and piscina loaded, on the first self-test: every thread that imports
 * lib/policy (the data-plane workers too) would otherwise pay piscina's module graph (~1.5 MiB RSS
 * measured in the agent) for a pool only the control plane uses.
 */
let PiscinaClass: typeof Piscina | null = null;

/**
 * Loads piscina now. The control plane calls this at start: a load attempted later, while the
 * process has no descriptor left (EMFILE), fails, and the module loader remembers that failure
 * (package.json reads are cached, misses included), which would break every self-test after it.
 */
export function loadSelfTestPool(): void {
  PiscinaClass ??= (require('piscina') as typeof import('piscina')).Piscina;
}

async function pool(): Promise<Piscina> {
  if (ownPool === null) {
    loadSelfTestPool();
    const Piscina = PiscinaClass!;
    // One thread is enough: a policy change is rare, and the point is to keep it off the data plane.
    // The thread ends as soon as it is idle (idleTimeout 0): an idle isolate costs ~9 MiB of RSS,
    // while starting one again takes tens of milliseconds once per policy change. No run/wait
    // histograms (recordTiming): nothing reads them, and each holds ~350 KiB of native memory.
    if (ownPool === null) {
      const p = new Piscina({
        filename: WORKER,
        maxThreads: 1,
        minThreads: 0,
        idleTimeout: 0,
        execArgv: [],
        recordTiming: false,
      });
      // A thread that cannot start (no file descriptors or memory left) is an 'error' event when no
      // task waits on it: unhandled, it would end the agent. Such a pool also stops starting
      // threads for good, so it is dropped; the next self-test gets a new one.
      p.on('error', () => {
        if (ownPool === p) ownPool = null;
        void p.destroy().catch(() => {});
      });
      ownPool = p;
    }
  }
  return ownPool;
}

/** The longest a self-test may take before it counts as failed to run (the pool is then renewed). */
const SELF_TEST_TIMEOUT_MS = 30_000;

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
  const p = opts.pool ?? (await pool());
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      if (p === ownPool) {
        ownPool = null;
        void p.destroy().catch(() => {});
      }
      reject(new Error(`the policy self-test did not finish within ${SELF_TEST_TIMEOUT_MS / 1000} s`));
    }, SELF_TEST_TIMEOUT_MS);
    timer.unref();
  });
  try {
    return (await Promise.race([p.run(taskOf(input)), timedOut])) as PolicyProblem[];
  } finally {
    clearTimeout(timer);
  }
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
