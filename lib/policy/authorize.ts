import { type CanonicalTarget, canonicalize } from './canonicalize.js';
import { type PolicyCode, PolicyCodes } from './codes.js';
import type { EndpointPolicy, PolicySnapshot } from './compile.js';
import { asciiLower } from './percent-decode.js';
import type { CompiledPrivilege, Grant, RuleSet } from './rule-set.js';
import type { ValidIdentity } from './schema.js';
import type { CallerClaims, Decision, PolicyRequest } from './types.js';

/** Optional sink for --explain; undefined on the data plane, so tracing costs one branch. */
export type Trace = string[] | undefined;

/**
 * Decides one request. Pure and synchronous: canonicalize once, walk the segment trie, compare
 * prepared identities. Order: canonical form, mode, root gate, signature-exempt uploads, rules.
 */
export function authorize(snapshot: PolicySnapshot, req: PolicyRequest, caller: CallerClaims, trace?: Trace): Decision {
  const ep = snapshot.endpoints[req.endpoint];
  // The uploads are WireServer (and HostGAPlugin) paths: on IMDS the same method and target are an
  // ordinary request, signed and held to the 100 KiB body limit.
  const exempt = req.endpoint !== 'imds' && isSignatureExempt(req.method, req.rawTarget);
  const canon = canonicalize(req.rawTarget);
  // A malformed or traversing target is a protocol violation, not a policy decision: never forwarded.
  if (!canon.ok) return refuse(snapshot, ep, canon.code, exempt);
  trace?.push(`canonical path ${canon.path}`);
  if (ep.mode === 'disabled') return decide(snapshot, ep, true, 'mode_disabled', canon, exempt);
  // The root gate is the endpoint's baseline, not a rule: it blocks in audit mode too.
  if (ep.requiresRoot && caller.uid !== 0) return refuse(snapshot, ep, 'root_required', exempt, canon);
  if (exempt && ep.requiresRoot) return decide(snapshot, ep, true, 'signature_exempt_root', canon, exempt);
  if (ep.remote === null) return decide(snapshot, ep, false, 'policy_fail_closed', canon, exempt);
  const remote = evaluate(ep.remote, canon, caller, trace);
  if (!remote.allow || ep.local === null) return decide(snapshot, ep, remote.allow, remote.code, canon, exempt, remote);
  const local = evaluate(ep.local, canon, caller, trace);
  trace?.push(`local rules: ${local.code}`);
  if (local.allow) {
    // Both allow: name the rule that was specific (a matched privilege beats a default).
    const v = remote.privilege ? remote : local;
    return decide(snapshot, ep, true, v.code, canon, exempt, v);
  }
  return decide(snapshot, ep, false, 'local_rules_deny', canon, exempt, local);
}

interface Verdict {
  allow: boolean;
  code: PolicyCode;
  privilege?: CompiledPrivilege;
  grant?: Grant;
}

/** Rule semantics of host-protocol.md section 3 over one rule set. */
export function evaluate(rs: RuleSet, canon: CanonicalTarget, caller: CallerClaims, trace?: Trace): Verdict {
  let matched: CompiledPrivilege | undefined;
  let node = rs.root;
  for (let depth = 0; ; depth++) {
    for (const priv of node.privileges) {
      const q = queryMatch(priv, canon);
      trace?.push(`privilege ${priv.name} (${priv.path}): query ${q}`);
      if (q === 'conflict') return { allow: false, code: 'query_conflict', privilege: priv };
      if (q === 'no') continue;
      matched ??= priv;
      for (const grant of priv.grants) {
        const ok = identityMatches(grant.identity, caller);
        trace?.push(`  identity ${grant.identity.name} via role ${grant.role}: ${ok ? 'match' : 'no match'}`);
        if (ok) return { allow: true, code: 'rule_allow', privilege: priv, grant };
      }
    }
    const seg = canon.segments[depth];
    if (seg === undefined) break;
    const next = node.children.get(seg);
    if (!next) break;
    node = next;
  }
  if (matched) return { allow: false, code: 'no_identity_match', privilege: matched };
  return rs.defaultAccess === 'allow' ? { allow: true, code: 'default_allow' } : { allow: false, code: 'default_deny' };
}

/** Every required key present with exactly the value; a required key given twice with different values fails closed. */
export function queryMatch(priv: CompiledPrivilege, canon: CanonicalTarget): 'yes' | 'no' | 'conflict' {
  let result: 'yes' | 'no' = 'yes';
  for (const [key, want] of priv.query) {
    const got = canon.query.get(key);
    if (got === undefined) {
      result = 'no';
      continue;
    }
    for (let i = 1; i < got.length; i++) if (got[i] !== got[0]) return 'conflict';
    if (got[0] !== want) result = 'no';
  }
  return result;
}

/** AND of the selectors the identity sets. processName is the executable's basename, not comm (which any process can set). */
export function identityMatches(id: ValidIdentity, caller: CallerClaims): boolean {
  if (id.userName !== null && caller.userName !== id.userName) return false;
  if (id.exePath !== null && caller.exePath !== id.exePath) return false;
  if (id.processName !== null) {
    const exe = caller.exePath;
    if (exe === null || exe.slice(exe.lastIndexOf('/') + 1) !== id.processName) return false;
  }
  if (id.groupName !== null) {
    let member = false;
    for (const g of caller.groups) if (g.name === id.groupName) member = true;
    if (!member) return false;
  }
  return true;
}

/** The two upload targets the host takes unsigned (whole target, case-insensitive); same rule as lib/signing. */
export function isSignatureExempt(method: string, rawTarget: string): boolean {
  if (rawTarget.length !== 11 && rawTarget.length !== 28) return false;
  const m = asciiLower(method);
  const t = asciiLower(rawTarget);
  return (m === 'put' && t === '/vmagentlog') || (m === 'post' && t === '/machine/?comp=telemetrydata');
}

function refuse(
  s: PolicySnapshot,
  ep: EndpointPolicy,
  code: PolicyCode,
  exempt: boolean,
  canon?: CanonicalTarget,
): Decision {
  const d: Decision = {
    outcome: 'deny',
    forward: false,
    status: PolicyCodes[code].status ?? 403,
    code,
    endpoint: ep.endpoint,
    mode: ep.mode,
    ruleId: ep.ruleId,
    signatureExempt: exempt,
    policyVersion: s.version,
  };
  if (canon) d.canonicalPath = canon.path;
  return d;
}

function decide(
  s: PolicySnapshot,
  ep: EndpointPolicy,
  allow: boolean,
  code: PolicyCode,
  canon: CanonicalTarget,
  exempt: boolean,
  v?: Verdict,
): Decision {
  const audit = !allow && ep.mode === 'audit';
  const d: Decision = {
    outcome: allow ? 'allow' : audit ? 'audit-deny' : 'deny',
    forward: allow || audit,
    code,
    endpoint: ep.endpoint,
    mode: ep.mode,
    ruleId: ep.ruleId,
    canonicalPath: canon.path,
    signatureExempt: exempt,
    policyVersion: s.version,
  };
  if (!d.forward) d.status = 403;
  if (v?.privilege) d.privilege = v.privilege.name;
  if (v?.grant) {
    d.role = v.grant.role;
    d.identity = v.grant.identity.name;
  }
  return d;
}
