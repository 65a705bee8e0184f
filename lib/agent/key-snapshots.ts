import type { Endpoint, KeySnapshot } from '../keykeeper/index.js';
import type { AgentMetrics } from '../metrics/index.js';
import { compilePolicy, type PolicySnapshot, runSelfTest } from '../policy/index.js';
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
    this.policyProblems = result.problems.map((p) => `${p.endpoint ?? '-'} ${p.path}: ${p.message}`);
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
}
