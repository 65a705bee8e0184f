import { canonicalize } from '../policy/index.js';
import type { AuditRecord } from './audit-log.js';

type Endpoint = 'imds' | 'wireserver' | 'hostga';
const ENDPOINTS: readonly Endpoint[] = ['imds', 'wireserver', 'hostga'];

/** An `authorizationRules.<endpoint>` item in the host's schema (what `gpa policy check` validates). */
export interface RuleItem {
  defaultAccess: 'deny';
  mode: 'enforce' | 'audit';
  id: string;
  rules: {
    privileges: { name: string; path: string; queryParameters?: Record<string, string> }[];
    roles: { name: string; privileges: string[] }[];
    identities: { name: string; userName?: string; exePath?: string }[];
    roleAssignments: { role: string; identities: string[] }[];
  };
}

export interface LearnResult {
  rules: Partial<Record<Endpoint, RuleItem>>;
  /** Requests the rules were learned from (forwarded, attributed, canonical). */
  used: AuditRecord[];
  skipped: { notForwarded: number; unattributed: number; noCanonicalForm: number; otherEndpoint: number };
}

interface Observation {
  path: string;
  query: ReadonlyMap<string, readonly string[]>;
  userName: string | null;
  uid: number;
  exePath: string | null;
}

function slug(s: string, max = 40): string {
  return (
    s
      .replace(/[^A-Za-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, max) || 'root'
  );
}

/**
 * Least-privilege rules from audit records gathered in Audit mode: one privilege per canonical path
 * that was actually requested (query keys that had a single value every time become required
 * queryParameters), one identity per (user, exe) pair that made such requests, and one role per
 * identity holding exactly the privileges it used. Everything else falls to `defaultAccess: deny`.
 * Denied and errored requests are not learned: learning them would turn a refusal into a grant.
 */
export function learnRules(
  records: AuditRecord[],
  opts: { mode?: 'enforce' | 'audit'; id?: string } = {},
): LearnResult {
  const skipped = { notForwarded: 0, unattributed: 0, noCanonicalForm: 0, otherEndpoint: 0 };
  const used: AuditRecord[] = [];
  const byEndpoint = new Map<Endpoint, Observation[]>();
  for (const r of records) {
    if (!ENDPOINTS.includes(r.endpoint as Endpoint)) {
      skipped.otherEndpoint++;
      continue;
    }
    if (r.outcome !== 'allow' && r.outcome !== 'audit-deny') {
      skipped.notForwarded++;
      continue;
    }
    if (!r.caller) {
      skipped.unattributed++;
      continue;
    }
    const c = canonicalize(r.target);
    if (!c.ok) {
      skipped.noCanonicalForm++;
      continue;
    }
    used.push(r);
    const list = byEndpoint.get(r.endpoint as Endpoint) ?? [];
    list.push({
      path: c.path,
      query: c.query,
      userName: r.caller.userName,
      uid: r.caller.uid,
      exePath: r.caller.exePath,
    });
    byEndpoint.set(r.endpoint as Endpoint, list);
  }
  const rules: Partial<Record<Endpoint, RuleItem>> = {};
  for (const [endpoint, obs] of byEndpoint) rules[endpoint] = learnItem(endpoint, obs, opts);
  return { rules, used, skipped };
}

function learnItem(
  endpoint: Endpoint,
  obs: Observation[],
  opts: { mode?: 'enforce' | 'audit'; id?: string },
): RuleItem {
  const paths = [...new Set(obs.map((o) => o.path))].sort();
  const privName = new Map(paths.map((p, i) => [p, `${endpoint}-p${i + 1}-${slug(p)}`]));
  const privileges = paths.map((p) => {
    const q = constantQuery(obs.filter((o) => o.path === p));
    return { name: privName.get(p)!, path: p, ...(Object.keys(q).length ? { queryParameters: q } : {}) };
  });
  const identityKey = (o: Observation) => `${o.userName ?? `#${o.uid}`}\u0000${o.exePath ?? ''}`;
  const keys = [...new Set(obs.map(identityKey))].sort();
  const identities: RuleItem['rules']['identities'] = [];
  const roles: RuleItem['rules']['roles'] = [];
  const roleAssignments: RuleItem['rules']['roleAssignments'] = [];
  keys.forEach((k, i) => {
    const mine = obs.filter((o) => identityKey(o) === k);
    const first = mine[0]!;
    const name = `${endpoint}-id${i + 1}-${slug(first.userName ?? `uid${first.uid}`, 20)}-${slug(first.exePath?.split('/').pop() ?? 'any', 20)}`;
    identities.push({
      name,
      // A user without a name (no passwd entry) cannot be named in a rule; the exe still narrows it.
      ...(first.userName ? { userName: first.userName } : {}),
      ...(first.exePath ? { exePath: first.exePath } : {}),
    });
    const role = `${name}-role`;
    roles.push({ name: role, privileges: [...new Set(mine.map((o) => privName.get(o.path)!))].sort() });
    roleAssignments.push({ role, identities: [name] });
  });
  return {
    defaultAccess: 'deny',
    mode: opts.mode ?? 'enforce',
    id: opts.id ?? `learned-${endpoint}-${new Date().toISOString().replace(/[:.]/g, '')}`,
    rules: { privileges, roles, identities, roleAssignments },
  };
}

/** Query keys present in every observation with one and the same value. */
function constantQuery(obs: Observation[]): Record<string, string> {
  const out: Record<string, string> = {};
  const first = obs[0];
  if (!first) return out;
  for (const [k, vals] of first.query) {
    if (vals.length !== 1) continue;
    const v = vals[0]!;
    if (obs.every((o) => o.query.get(k)?.length === 1 && o.query.get(k)![0] === v)) out[k] = v;
  }
  return out;
}
