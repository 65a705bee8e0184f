import type { PolicyProblemCode } from './codes.js';
import { type LocalRuleFileKey, localFileKey, readLocalRuleFile, wantsLocalRules } from './local-rules.js';
import { buildRuleSet, OPEN_RULE_SET, type RuleSet } from './rule-set.js';
import { validateItem } from './schema.js';
import { parseStrictJson } from './strict-json.js';
import { ENDPOINTS, type Endpoint, type Mode, type PolicyProblem } from './types.js';

/** How an endpoint's rules came to be; reported in status. */
export type EndpointPolicyState = 'default' | 'remote' | 'previous' | 'deny-all';

export interface EndpointPolicy {
  readonly endpoint: Endpoint;
  readonly mode: Mode;
  readonly ruleId: string | null;
  readonly state: EndpointPolicyState;
  /** WireServer and HostGAPlugin: uid 0 only, before any rule. */
  readonly requiresRoot: boolean;
  /** null when state is deny-all. */
  readonly remote: RuleSet | null;
  /** Local rule file (tightening only), when the rule id asks for it. */
  readonly local: RuleSet | null;
}

/** Immutable, versioned compiled policy; capture it once per request. */
export interface PolicySnapshot {
  readonly version: number;
  readonly epoch: number | null;
  readonly endpoints: Readonly<Record<Endpoint, EndpointPolicy>>;
}

export interface CompileInput {
  modes: Record<Endpoint, Mode>;
  /** Items as the host sent them: parsed JSON values, or raw JSON text (then duplicate keys are caught). */
  rules: Partial<Record<Endpoint, unknown>>;
  ruleIds?: Partial<Record<Endpoint, string | null>>;
  /** Folder holding WireServer_Rules.json / IMDS_Rules.json; read only when a rule id asks for it. */
  localRulesDir?: string;
  /** Local rule texts already read (the pure path; compilePolicy fills this from localRulesDir). */
  localRules?: Partial<Record<LocalRuleFileKey, Buffer | string | { error: string }>>;
  previous?: PolicySnapshot;
  epoch?: number;
  /** Errors found outside compile (the evil-twin self-test); treated like schema errors. */
  extraProblems?: PolicyProblem[];
}

export interface CompileResult {
  snapshot: PolicySnapshot;
  problems: PolicyProblem[];
  /** Some endpoint denies everything because its policy is broken. */
  failClosed: boolean;
  /** Some endpoint kept the last good rules (same rule id) because the new document is broken. */
  keptPrevious: boolean;
}

let nextVersion = 1;

/** Compiles a policy, reading local rule files when a rule id asks for them (never on the hot path). */
export function compilePolicy(input: CompileInput): CompileResult {
  if (!input.localRulesDir) return compilePolicyPure(input);
  const localRules: NonNullable<CompileInput['localRules']> = { ...input.localRules };
  for (const ep of ENDPOINTS) {
    const key = localFileKey(ep);
    if (localRules[key] !== undefined || !wantsLocalRules(ruleIdOf(input, ep))) continue;
    const r = readLocalRuleFile(input.localRulesDir, key);
    localRules[key] = r.ok ? r.text : { error: r.message };
  }
  return compilePolicyPure({ ...input, localRules });
}

/** Like compilePolicy with no file access: local rule texts come in `input.localRules`. */
export function compilePolicyPure(input: CompileInput): CompileResult {
  const problems: PolicyProblem[] = [];
  const endpoints = {} as Record<Endpoint, EndpointPolicy>;
  for (const ep of ENDPOINTS) endpoints[ep] = compileEndpoint(input, ep, problems);
  if (input.rules.hostga == null && !input.extraProblems?.some((p) => p.endpoint === 'hostga')) {
    // HostGAPlugin shares WireServer's compiled rules; only the mode is its own.
    endpoints.hostga = Object.freeze({
      ...endpoints.wireserver,
      endpoint: 'hostga',
      mode: input.modes.hostga ?? 'disabled',
    });
  }
  const states = ENDPOINTS.map((ep) => endpoints[ep].state);
  const snapshot: PolicySnapshot = Object.freeze({
    version: nextVersion++,
    epoch: input.epoch ?? null,
    endpoints: Object.freeze(endpoints),
  });
  return { snapshot, problems, failClosed: states.includes('deny-all'), keptPrevious: states.includes('previous') };
}

function ruleIdOf(input: CompileInput, ep: Endpoint): string | null {
  const item = itemOf(input, ep);
  const given =
    input.ruleIds?.[ep] ?? (ep === 'hostga' && input.rules.hostga == null ? input.ruleIds?.wireserver : null);
  if (given) return given;
  if (typeof item === 'object' && item !== null && typeof (item as { id?: unknown }).id === 'string')
    return (item as { id: string }).id;
  return null;
}

/** HostGAPlugin falls back to WireServer's item when the host sent none of its own. */
function itemOf(input: CompileInput, ep: Endpoint): unknown {
  const own = input.rules[ep];
  return ep === 'hostga' && own == null ? input.rules.wireserver : own;
}

function compileEndpoint(input: CompileInput, ep: Endpoint, problems: PolicyProblem[]): EndpointPolicy {
  const mode = input.modes[ep] ?? 'disabled';
  const ruleId = ruleIdOf(input, ep);
  const base = { endpoint: ep, mode, ruleId, requiresRoot: ep !== 'imds' };
  const raw = itemOf(input, ep);
  // HostGAPlugin sharing WireServer's item reports its problems once, under wireserver.
  const quiet = ep === 'hostga' && input.rules.hostga == null;
  const report = (p: PolicyProblem) => !quiet && problems.push(p);
  const extra = (input.extraProblems ?? []).filter((p) => p.endpoint === ep && p.severity === 'error');
  extra.forEach(report);
  if (raw == null && extra.length === 0)
    return Object.freeze({ ...base, state: 'default', remote: OPEN_RULE_SET, local: null });

  const item = raw == null ? null : parseItem(raw, ep, report);
  if (item === null || extra.length > 0) {
    const prev = input.previous?.endpoints[ep];
    if (prev?.remote && prev.state !== 'deny-all' && prev.ruleId !== null && prev.ruleId === ruleId) {
      report(
        problem(
          'warning',
          'kept_previous',
          ep,
          ep,
          `rules for ${ep} (id ${ruleId}) are broken; keeping the last good version`,
        ),
      );
      return Object.freeze({ ...base, state: 'previous', remote: prev.remote, local: prev.local });
    }
    report(
      problem('error', 'fail_closed', ep, ep, `rules for ${ep} are broken; denying every request under mode ${mode}`),
    );
    return Object.freeze({ ...base, state: 'deny-all', remote: null, local: null });
  }
  const remote = buildRuleSet(item);
  if (!wantsLocalRules(ruleId)) return Object.freeze({ ...base, state: 'remote', remote, local: null });
  const local = compileLocal(input, ep, report);
  if (local === null) {
    report(
      problem(
        'error',
        'fail_closed',
        ep,
        ep,
        `local rules for ${ep} are unusable; denying every request under mode ${mode}`,
      ),
    );
    return Object.freeze({ ...base, state: 'deny-all', remote: null, local: null });
  }
  return Object.freeze({ ...base, state: 'remote', remote, local });
}

function parseItem(raw: unknown, ep: Endpoint, report: (p: PolicyProblem) => void) {
  let value = raw;
  if (typeof raw === 'string' || Buffer.isBuffer(raw)) {
    const parsed = parseStrictJson(raw);
    if (!parsed.ok) {
      report(problem('error', parsed.code, ep, ep, parsed.message));
      return null;
    }
    value = parsed.value;
  }
  const { item, problems } = validateItem(value, ep, ep);
  problems.forEach(report);
  return item;
}

function compileLocal(input: CompileInput, ep: Endpoint, report: (p: PolicyProblem) => void): RuleSet | null {
  const key = localFileKey(ep);
  const where = `local:${key}`;
  const text = input.localRules?.[key];
  if (text === undefined || (typeof text === 'object' && !Buffer.isBuffer(text))) {
    const why = text === undefined ? 'no local rules folder configured' : text.error;
    report(problem('error', 'local_rules_unavailable', ep, where, `the rule id asks for local rules: ${why}`));
    return null;
  }
  const parsed = parseStrictJson(text);
  if (!parsed.ok) {
    report(problem('error', parsed.code, ep, where, parsed.message));
    return null;
  }
  const { item, problems } = validateItem(parsed.value, where, ep);
  problems.forEach(report);
  return item ? buildRuleSet(item) : null;
}

function problem(
  severity: 'error' | 'warning',
  code: PolicyProblemCode,
  endpoint: Endpoint,
  path: string,
  message: string,
): PolicyProblem {
  return { severity, code, endpoint, path, message: `${path}: ${message}` };
}
