import { queryMatch } from './authorize.js';
import { canonicalize } from './canonicalize.js';
import type { PolicySnapshot } from './compile.js';
import type { CompiledPrivilege, RuleSet } from './rule-set.js';
import type { Endpoint, PolicyProblem } from './types.js';

const MAX_REPORTED = 20;

/** Raw targets a hair outside `path`: suffixes, case, encodings, dot segments, slashes, parameters. */
export function evilTwins(path: string): string[] {
  if (path === '/') return [];
  const cut = path.lastIndexOf('/');
  const parent = path.slice(0, cut);
  const last = path.slice(cut + 1);
  const up = path.toUpperCase();
  const encLast = [...last].map((ch) => `%${ch.charCodeAt(0).toString(16).padStart(2, '0')}`).join('');
  const twins = [
    `${path}x`,
    `${path}-evil`,
    `${path}.x`,
    `${path}%2e`,
    `${path}%20`,
    `${path}%00`,
    `${path}%2fx`,
    `${path}%2Fx`,
    `${path}%5cx`,
    `${path}%252fx`,
    `${path}%c0%afx`,
    `${path}%3fx`,
    `${path}%23x`,
    `${path}\\x`,
    `${up}-EVIL`,
    `${parent}/${last.toUpperCase()}X`,
    `${parent}//${last}x`,
    `${parent}/${encLast}x`,
    `${parent}/${encLast.toUpperCase()}-x`,
    `${path}/..`,
    `${path}/../${last}x`,
    `${path}/%2e%2e/${last}-evil`,
    `${path}/.%2E/x`,
    `${path}/x;/../../${last}x`,
    `${path};x=1/../../${last}x`,
    `${path}/./../../${last}x`,
  ];
  if (last.length > 1) twins.push(`${parent}/${last.slice(0, -1)}`);
  return twins;
}

const inside = (canonical: string, base: string) =>
  base === '/' || canonical === base || canonical.startsWith(`${base}/`);

function trieHas(rs: RuleSet, segments: readonly string[], priv: CompiledPrivilege): boolean {
  let node = rs.root;
  for (let i = 0; ; i++) {
    if (node.privileges.includes(priv)) return true;
    const seg = segments[i];
    const next = seg === undefined ? undefined : node.children.get(seg);
    if (!next) return false;
    node = next;
  }
}

/** Query variants that must not satisfy the privilege's constraints. */
function queryTwins(priv: CompiledPrivilege): string[] {
  const out: string[] = [];
  const base = priv.query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  priv.query.forEach(([k, v], i) => {
    const others = base.filter((_, j) => j !== i);
    const ek = encodeURIComponent(k);
    const variants = [
      `${ek}=${encodeURIComponent(`${v}x`)}`,
      `${ek}=${encodeURIComponent(v)}&${ek}=${encodeURIComponent(`${v}x`)}`,
      '',
    ];
    if (v.toUpperCase() !== v) variants.push(`${ek}=${encodeURIComponent(v.toUpperCase())}`);
    if (/[^A-Za-z0-9_.~-]/.test(v)) variants.push(`${ek}=${encodeURIComponent(encodeURIComponent(v))}`);
    for (const q of variants) out.push([...others, q].filter(Boolean).join('&'));
  });
  return out;
}

/** Checks one rule set; returns a problem per twin that matched, with the reproducer. */
export function selfTestRuleSet(rs: RuleSet, endpoint: Endpoint, where: string): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  const fail = (priv: CompiledPrivilege, twin: string, why: string) => {
    if (problems.length < MAX_REPORTED)
      problems.push({
        severity: 'error',
        code: 'evil_twin',
        endpoint,
        path: `${where}.privileges.${priv.name}`,
        message: `${where}: privilege "${priv.name}" (${priv.path}) matched the near miss ${JSON.stringify(twin)}: ${why}`,
      });
  };
  for (const priv of rs.privileges) {
    for (const twin of evilTwins(priv.path)) {
      const c = canonicalize(twin);
      if (!c.ok) continue;
      if (inside(c.path, priv.path)) fail(priv, twin, `it canonicalizes to ${c.path}, inside the privilege`);
      else if (trieHas(rs, c.segments, priv)) fail(priv, twin, `the trie matched canonical ${c.path}`);
    }
    if (priv.query.length === 0) continue;
    for (const q of queryTwins(priv)) {
      const twin = `${priv.path}?${q}`;
      const c = canonicalize(twin);
      if (c.ok && queryMatch(priv, c) === 'yes') fail(priv, twin, 'its query satisfied the constraints');
    }
  }
  return problems;
}

/** Runs the evil-twin self-test over every compiled rule set in a snapshot. */
export function selfTestSnapshot(snapshot: PolicySnapshot): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  for (const ep of ['imds', 'wireserver', 'hostga'] as const) {
    const p = snapshot.endpoints[ep];
    if (
      ep === 'hostga' &&
      p.remote === snapshot.endpoints.wireserver.remote &&
      p.local === snapshot.endpoints.wireserver.local
    )
      continue;
    if (p.remote) problems.push(...selfTestRuleSet(p.remote, ep, ep));
    if (p.local) problems.push(...selfTestRuleSet(p.local, ep, `local:${ep}`));
  }
  return problems;
}
