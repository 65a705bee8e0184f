import { type Endpoint, type KeySnapshot, statusKnown } from '../keykeeper/index.js';
import type { AgentMetrics } from '../metrics/index.js';
import { compilePolicy, type PolicyProblem, type PolicySnapshot, runSelfTest } from '../policy/index.js';
import { policyEnforcementNote } from '../status/index.js';
import type { AgentStatus, Log } from './agent-status.js';
import type { AgentConfig } from './config.js';
import type { SnapshotMessage } from './messages.js';
import { ENDPOINTS, type RedirectRules } from './redirect-rules.js';
import type { WorkerSet } from './workers.js';

export interface KeySnapshotDeps {
  config: AgentConfig;
  workers: WorkerSet;
  status: AgentStatus;
  /** null when redirect is off in the config (tests only). */
  rules: RedirectRules | null;
  metrics: () => AgentMetrics | null;
  clockOffsetMs: () => number;
  log: Log;
}

/**
 * Applies each key snapshot in order: the policy self-test off the main thread, compile (for its
 * problems and the metrics; every worker compiles the same input itself), publish to the workers,
 * and only then the redirect rules, so a newly redirected endpoint meets a worker that has its policy.
 */
export class KeySnapshotApplier {
  /** The last compiled policy (the next compile keeps it when a rule document is broken). */
  policy: PolicySnapshot | null = null;
  policyProblems: string[] = [];

  constructor(private readonly d: KeySnapshotDeps) {}

  async apply(ks: KeySnapshot): Promise<void> {
    const { status, metrics } = this.d;
    status.keySnapshot = ks;
    if (!statusKnown(ks)) {
      // No good status yet (a failed first poll): the modes are not known, so nothing is decided
      // from them. Redirects a previous run left pinned stay (spec: on any failure keep the
      // redirects), and the workers keep refusing what reaches them (503 no_policy) instead of
      // being told "disabled", which would forward unchecked.
      metrics()?.control.onKeySnapshot(ks);
      status.writeIfChanged();
      return;
    }
    const rules: Partial<Record<Endpoint, unknown>> = {};
    for (const ep of ENDPOINTS) {
      const v = ks.rules[ep];
      if (v !== undefined) rules[ep] = Buffer.isBuffer(v) ? v.toString('utf8') : v;
    }
    const input = {
      modes: { ...ks.modes },
      rules,
      ruleIds: { ...ks.ruleIds },
      localRulesDir: this.d.config.rulesFolder,
      epoch: ks.epoch,
    };
    let extraProblems: Awaited<ReturnType<typeof runSelfTest>> = [];
    try {
      extraProblems = await runSelfTest(input);
    } catch (err) {
      this.d.log('warn', `policy self-test could not run: ${(err as Error).message}`);
    }
    const result = compilePolicy({ ...input, extraProblems, ...(this.policy ? { previous: this.policy } : {}) });
    this.policy = result.snapshot;
    this.reportPolicyProblems(result.problems);
    metrics()?.control.onKeySnapshot(ks);
    metrics()?.control.onPolicyCompiled({
      epoch: ks.epoch,
      failClosed: result.failClosed,
      keptPrevious: result.keptPrevious,
      problems: result.problems.length,
    });
    status.provisioning.setSecureChannelState(ks.secureChannelState);
    const doc = status.document();
    const msg: SnapshotMessage = {
      type: 'gpa:snapshot',
      epoch: ks.epoch,
      policy: { ...input, extraProblems },
      key: ks.key ? { guid: ks.key.guid, bytes: new Uint8Array(ks.key.bytes) } : null,
      hostClockOffsetMs: this.d.clockOffsetMs(),
      provision: status.provisioning.snapshot(),
      aggregatedStatus: JSON.stringify(doc),
    };
    this.d.workers.post(msg);
    this.d.rules?.apply(ks.modes, status.listenPort);
    // New modes, rule ids or key reach status.json now, not at the next 60 s rewrite.
    status.writeIfChanged();
  }

  /**
   * Each compile's problems reach the log when they change, and the ones that change what is
   * enforced (an endpoint failing closed, or keeping its last good rules) reach status.json.
   */
  private reportPolicyProblems(problems: readonly PolicyProblem[]): void {
    const lines = problems.map((p) => `${p.severity} ${p.endpoint ?? '-'} ${p.path}: ${p.message}`);
    if (lines.join('\n') !== this.policyProblems.join('\n')) {
      for (const l of lines) this.d.log(l.startsWith('error') ? 'error' : 'warn', `policy: ${l}`);
      if (lines.length === 0 && this.policyProblems.length > 0) this.d.log('info', 'policy: compiled without problems');
    }
    this.policyProblems = lines;
    this.d.status.policyNote = policyEnforcementNote(problems);
  }
}
