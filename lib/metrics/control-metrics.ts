import { ENDPOINTS, MODES } from './labels.js';
import { Counter, Gauge, type Registry } from './prom.js';

/** The parts of the key keeper's snapshot the metrics read (structurally a KeySnapshot). */
export interface KeyMetricsInput {
  epoch: number;
  key?: { incarnationId: number | null } | undefined;
  modes: Record<string, string>;
  health: string;
  keyIncarnationId: number | null;
}

/** The outcome of one policy compile (what compilePolicy returns, reduced to numbers). */
export interface PolicyCompileInput {
  epoch: number;
  failClosed: boolean;
  keptPrevious: boolean;
  problems: number;
}

/** The redirector's view at scrape time: its status and its stats() counters. */
export interface RedirectorMetricsInput {
  state: string;
  programs?: { attached: boolean }[];
  stats?: Record<string, bigint | number>;
}

const KEY_HEALTH = ['unknown', 'ok', 'degraded'] as const;
const REDIRECTOR_STATES = ['stopped', 'running', 'degraded', 'failed', 'unsupported'] as const;

/**
 * Which stats() counters feed which metric. The addon names its per-CPU counters; each metric takes
 * the sum of the keys listed (so connect4 and connect6 counters both count as "redirected").
 */
const BPF_COUNTERS: { metric: string; help: string; match: RegExp }[] = [
  {
    metric: 'gpa_bpf_redirected_total',
    help: 'Connects the BPF programs redirected to the agent',
    match: /^redirect/i,
  },
  {
    metric: 'gpa_bpf_published_total',
    help: 'Connection records published for attribution',
    match: /^publish(ed)?$|^published_/i,
  },
  {
    metric: 'gpa_bpf_publish_failures_total',
    help: 'Connection records the BPF programs failed to publish',
    match: /^publish_?fail/i,
  },
];

/**
 * Control-plane metrics, owned by the main thread: key state and incarnation, policy epoch and
 * compile failures, per-endpoint mode, redirector state and BPF counters. Key and policy are
 * pushed when they change; the redirector is read at scrape time through a source function.
 */
export class ControlMetrics {
  private readonly keyHealth: Gauge<'health'>;
  private readonly keyPresent: Gauge;
  private readonly keyIncarnation: Gauge;
  private readonly keyEpoch: Gauge;
  private readonly mode: Gauge<'endpoint' | 'mode'>;
  private readonly policyEpoch: Gauge;
  private readonly policyFailClosed: Gauge;
  private readonly policyCompiles: Counter<'result'>;
  private readonly policyFailures: Counter;
  private readonly hostClockOffset: Gauge;
  private redirectorSource: (() => RedirectorMetricsInput | undefined) | undefined;

  constructor(registry: Registry) {
    const r = [registry];
    this.keyHealth = new Gauge({
      name: 'gpa_key_health',
      help: 'Secure-channel health (1 for the current value)',
      labelNames: ['health'],
      registers: r,
    });
    this.keyPresent = new Gauge({ name: 'gpa_key_present', help: '1 when a signing key is held', registers: r });
    this.keyIncarnation = new Gauge({
      name: 'gpa_key_incarnation_id',
      help: 'keyIncarnationId of the held key (-1 when none)',
      registers: r,
    });
    this.keyEpoch = new Gauge({
      name: 'gpa_key_snapshot_epoch',
      help: 'Epoch of the key keeper snapshot in use',
      registers: r,
    });
    this.mode = new Gauge({
      name: 'gpa_endpoint_mode',
      help: 'Per-endpoint mode (1 for the current mode)',
      labelNames: ['endpoint', 'mode'],
      registers: r,
    });
    this.policyEpoch = new Gauge({
      name: 'gpa_policy_epoch',
      help: 'Epoch of the policy snapshot in use',
      registers: r,
    });
    this.policyFailClosed = new Gauge({
      name: 'gpa_policy_fail_closed',
      help: '1 when the last compile failed closed (denying)',
      registers: r,
    });
    this.policyCompiles = new Counter({
      name: 'gpa_policy_compiles_total',
      help: 'Policy compiles by result (ok, kept-previous, fail-closed)',
      labelNames: ['result'],
      registers: r,
    });
    this.policyFailures = new Counter({
      name: 'gpa_policy_compile_failures_total',
      help: 'Policy compiles that failed (kept the previous policy or failed closed)',
      registers: r,
    });
    this.hostClockOffset = new Gauge({
      name: 'gpa_host_clock_offset_seconds',
      help: 'Host clock (x-ms-azure-host-date) minus local clock, as last measured by the key keeper',
      registers: r,
    });
    for (const h of KEY_HEALTH) this.keyHealth.set({ health: h }, h === 'unknown' ? 1 : 0);
    this.keyIncarnation.set(-1);
    for (const e of ENDPOINTS) for (const m of MODES) this.mode.set({ endpoint: e, mode: m }, m === 'disabled' ? 1 : 0);

    const self = this;
    new Gauge({
      name: 'gpa_redirector_state',
      help: 'Redirector state (1 for the current state)',
      labelNames: ['state'],
      registers: r,
      collect() {
        const s = self.readRedirector();
        for (const st of REDIRECTOR_STATES) this.set({ state: st }, s?.state === st ? 1 : 0);
      },
    });
    new Gauge({
      name: 'gpa_redirector_programs_attached',
      help: 'BPF programs the agent has attached',
      registers: r,
      collect() {
        this.set(self.readRedirector()?.programs?.filter((p) => p.attached).length ?? 0);
      },
    });
    for (const c of BPF_COUNTERS) {
      new Counter({
        name: c.metric,
        help: c.help,
        registers: r,
        collect() {
          this.reset();
          this.inc(sumMatching(self.readRedirector()?.stats, c.match));
        },
      });
    }
    // lib/redirector's stats(): conn_entries (published, not yet consumed) and conn_map_size (capacity).
    new Gauge({
      name: 'gpa_bpf_map_entries',
      help: 'Entries in the connection map (published, not yet consumed)',
      labelNames: ['map'],
      registers: r,
      collect() {
        const v = self.readRedirector()?.stats?.['conn_entries'];
        if (v !== undefined) this.set({ map: 'conn' }, Number(v));
      },
    });
    new Gauge({
      name: 'gpa_bpf_map_capacity',
      help: 'Capacity of the connection map',
      labelNames: ['map'],
      registers: r,
      collect() {
        const v = self.readRedirector()?.stats?.['conn_map_size'];
        if (v !== undefined) this.set({ map: 'conn' }, Number(v));
      },
    });
  }

  /** Records a new key keeper snapshot. */
  onKeySnapshot(s: KeyMetricsInput): void {
    for (const h of KEY_HEALTH) this.keyHealth.set({ health: h }, s.health === h ? 1 : 0);
    this.keyPresent.set(s.key ? 1 : 0);
    this.keyIncarnation.set(s.key ? (s.key.incarnationId ?? s.keyIncarnationId ?? -1) : -1);
    this.keyEpoch.set(s.epoch);
    for (const e of ENDPOINTS) {
      const cur = s.modes[e];
      for (const m of MODES) this.mode.set({ endpoint: e, mode: m }, cur === m ? 1 : 0);
    }
  }

  /** Records the outcome of a policy compile. */
  onPolicyCompiled(p: PolicyCompileInput): void {
    this.policyEpoch.set(p.epoch);
    this.policyFailClosed.set(p.failClosed ? 1 : 0);
    const result = p.failClosed ? 'fail-closed' : p.keptPrevious ? 'kept-previous' : 'ok';
    this.policyCompiles.inc({ result });
    if (result !== 'ok') this.policyFailures.inc();
  }

  /** Records the host clock offset the key keeper measured (host minus local, in ms). */
  onHostClock(offsetMs: number): void {
    if (Number.isFinite(offsetMs)) this.hostClockOffset.set(offsetMs / 1000);
  }

  /** Sets the function read at scrape time for redirector state and counters. */
  setRedirectorSource(fn: () => RedirectorMetricsInput | undefined): void {
    this.redirectorSource = fn;
  }

  private readRedirector(): RedirectorMetricsInput | undefined {
    try {
      return this.redirectorSource?.();
    } catch {
      return undefined;
    }
  }
}

function sumMatching(stats: Record<string, bigint | number> | undefined, re: RegExp): number {
  let n = 0;
  for (const [k, v] of Object.entries(stats ?? {})) if (re.test(k)) n += Number(v);
  return n;
}
