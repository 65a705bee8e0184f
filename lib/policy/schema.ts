import { canonicalize } from './canonicalize.js';
import type { PolicyProblemCode } from './codes.js';
import { asciiLower } from './percent-decode.js';
import type { Access, Endpoint, Mode, PolicyProblem } from './types.js';

export const MAX_LIST_LENGTH = 10_000;
export const MAX_STRING_LENGTH = 1024;

export interface ValidPrivilege {
  name: string;
  path: string;
  segments: readonly string[];
  query: readonly (readonly [string, string])[];
}
export interface ValidIdentity {
  name: string;
  userName: string | null;
  groupName: string | null;
  exePath: string | null;
  processName: string | null;
}
/** A rule item that passed validation; names are resolved, references checked. */
export interface ValidItem {
  defaultAccess: Access;
  mode: Mode | null;
  id: string | null;
  privileges: ValidPrivilege[];
  roles: { name: string; privileges: string[] }[];
  identities: ValidIdentity[];
  roleAssignments: { role: string; identities: string[] }[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Collects problems for one item; `where` prefixes every problem path (e.g. `imds`). */
class Checker {
  readonly problems: PolicyProblem[] = [];
  constructor(readonly endpoint: Endpoint | null) {}

  add(code: PolicyProblemCode, path: string, message: string, severity: 'error' | 'warning' = 'error'): null {
    this.problems.push({ severity, code, endpoint: this.endpoint, path, message: `${path}: ${message}` });
    return null;
  }

  fields(o: Obj, path: string, allowed: readonly string[]): void {
    for (const k of Object.keys(o))
      if (!allowed.includes(k))
        this.add('unknown_field', `${path}.${k}`, `unknown field; allowed fields are ${allowed.join(', ')}`);
  }

  str(o: Obj, key: string, path: string, required: boolean): string | null {
    const v = o[key];
    if (v === undefined || v === null) {
      if (required) this.add('missing_field', `${path}.${key}`, 'required string is missing');
      return null;
    }
    if (typeof v !== 'string') return this.add('wrong_type', `${path}.${key}`, `expected a string, got ${typeof v}`);
    if (v === '') return this.add('invalid_value', `${path}.${key}`, 'must not be empty');
    if (v.length > MAX_STRING_LENGTH)
      return this.add('too_large', `${path}.${key}`, `longer than ${MAX_STRING_LENGTH} characters`);
    return v;
  }

  list(o: Obj, key: string, path: string): unknown[] {
    const v = o[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      this.add('wrong_type', `${path}.${key}`, 'expected an array');
      return [];
    }
    if (v.length > MAX_LIST_LENGTH) {
      this.add('too_large', `${path}.${key}`, `${v.length} entries; the limit is ${MAX_LIST_LENGTH}`);
      return [];
    }
    return v;
  }

  names(list: unknown[], path: string): string[] {
    const out: string[] = [];
    list.forEach((v, i) => {
      if (typeof v === 'string' && v !== '') out.push(v);
      else this.add('wrong_type', `${path}[${i}]`, 'expected a non-empty name');
    });
    return out;
  }
}

/** Validates an `authorizationRules.<endpoint>` item (or a local rule file with the same shape). */
export function validateItem(
  raw: unknown,
  where: string,
  endpoint: Endpoint | null,
): { item: ValidItem | null; problems: PolicyProblem[] } {
  const c = new Checker(endpoint);
  if (!isObj(raw)) {
    c.add('wrong_type', where, 'a rule item must be a JSON object');
    return { item: null, problems: c.problems };
  }
  c.fields(raw, where, ['defaultAccess', 'mode', 'id', 'rules']);
  const access = c.str(raw, 'defaultAccess', where, true);
  const defaultAccess = access === null ? null : asciiLower(access);
  if (defaultAccess !== null && defaultAccess !== 'allow' && defaultAccess !== 'deny')
    c.add('invalid_value', `${where}.defaultAccess`, `"${access}" is neither allow nor deny`);
  const modeText = c.str(raw, 'mode', where, false);
  const mode = modeText === null ? null : asciiLower(modeText);
  if (mode !== null && mode !== 'disabled' && mode !== 'audit' && mode !== 'enforce')
    c.add(
      'invalid_value',
      `${where}.mode`,
      `"${modeText}" is not disabled, audit or enforce (treated as disabled)`,
      'warning',
    );
  const id = c.str(raw, 'id', where, false);
  const rulesPath = `${where}.rules`;
  const rules = raw['rules'] ?? {};
  const item: ValidItem = {
    defaultAccess: defaultAccess === 'allow' ? 'allow' : 'deny',
    mode: mode === 'disabled' || mode === 'audit' || mode === 'enforce' ? mode : null,
    id,
    privileges: [],
    roles: [],
    identities: [],
    roleAssignments: [],
  };
  if (!isObj(rules))
    c.add('wrong_type', rulesPath, 'expected an object with privileges, roles, identities, roleAssignments');
  else readRules(c, rules, rulesPath, item);
  const failed = c.problems.some((p) => p.severity === 'error');
  return { item: failed ? null : item, problems: c.problems };
}

function readRules(c: Checker, rules: Obj, path: string, item: ValidItem): void {
  c.fields(rules, path, ['privileges', 'roles', 'identities', 'roleAssignments']);
  const seen = (kind: string) => {
    const names = new Set<string>();
    return (name: string | null, p: string) => {
      if (name === null) return;
      if (names.has(name)) c.add('duplicate_name', `${p}.name`, `a second ${kind} named "${name}"`);
      names.add(name);
    };
  };
  const privSeen = seen('privilege');
  c.list(rules, 'privileges', path).forEach((v, i) => {
    const p = `${path}.privileges[${i}]`;
    const priv = readPrivilege(c, v, p);
    privSeen(priv?.name ?? null, p);
    if (priv) item.privileges.push(priv);
  });
  const privNames = new Set(item.privileges.map((x) => x.name));
  const roleSeen = seen('role');
  c.list(rules, 'roles', path).forEach((v, i) => {
    const p = `${path}.roles[${i}]`;
    if (!isObj(v)) {
      c.add('wrong_type', p, 'a role must be an object');
      return;
    }
    c.fields(v, p, ['name', 'privileges']);
    const name = c.str(v, 'name', p, true);
    roleSeen(name, p);
    const privs = c.names(c.list(v, 'privileges', p), `${p}.privileges`);
    privs.forEach((n, k) => {
      if (!privNames.has(n)) c.add('dangling_reference', `${p}.privileges[${k}]`, `no privilege named "${n}"`);
    });
    if (name !== null) item.roles.push({ name, privileges: privs });
  });
  const idSeen = seen('identity');
  c.list(rules, 'identities', path).forEach((v, i) => {
    const p = `${path}.identities[${i}]`;
    const ident = readIdentity(c, v, p);
    idSeen(ident?.name ?? null, p);
    if (ident) item.identities.push(ident);
  });
  const roleNames = new Set(item.roles.map((x) => x.name));
  const idNames = new Set(item.identities.map((x) => x.name));
  c.list(rules, 'roleAssignments', path).forEach((v, i) => {
    const p = `${path}.roleAssignments[${i}]`;
    if (!isObj(v)) {
      c.add('wrong_type', p, 'a role assignment must be an object');
      return;
    }
    c.fields(v, p, ['role', 'identities']);
    const role = c.str(v, 'role', p, true);
    if (role !== null && !roleNames.has(role)) c.add('dangling_reference', `${p}.role`, `no role named "${role}"`);
    const ids = c.names(c.list(v, 'identities', p), `${p}.identities`);
    ids.forEach((n, k) => {
      if (!idNames.has(n)) c.add('dangling_reference', `${p}.identities[${k}]`, `no identity named "${n}"`);
    });
    if (role !== null) item.roleAssignments.push({ role, identities: ids });
  });
}

function readPrivilege(c: Checker, v: unknown, p: string): ValidPrivilege | null {
  if (!isObj(v)) return c.add('wrong_type', p, 'a privilege must be an object');
  c.fields(v, p, ['name', 'path', 'queryParameters']);
  const name = c.str(v, 'name', p, true);
  const rawPath = c.str(v, 'path', p, true);
  if (name === null || rawPath === null) return null;
  if (rawPath.includes('?')) return c.add('invalid_value', `${p}.path`, 'put query requirements in queryParameters');
  const canon = canonicalize(rawPath);
  if (!canon.ok)
    return c.add('noncanonical_path', `${p}.path`, `"${rawPath}" is refused by the canonicalizer (${canon.code})`);
  // Dot segments and matrix parameters in a rule would make the rule mean something else than it reads.
  if (/(^|\/)\.\.?(\/|$)|;/.test(rawPath))
    return c.add('noncanonical_path', `${p}.path`, `"${rawPath}" has dot segments or ';'; write "${canon.path}"`);
  const query: [string, string][] = [];
  const q = v['queryParameters'];
  if (q !== undefined && q !== null) {
    if (!isObj(q)) return c.add('wrong_type', `${p}.queryParameters`, 'expected an object of key: value strings');
    const keys = new Set<string>();
    for (const [k, val] of Object.entries(q)) {
      const kp = `${p}.queryParameters.${k}`;
      const key = asciiLower(k);
      if (key === '') c.add('invalid_value', kp, 'empty query key');
      else if (keys.has(key))
        c.add('duplicate_key', kp, `query key "${key}" appears twice (keys are case-insensitive)`);
      else if (typeof val !== 'string') c.add('wrong_type', kp, `expected a string value, got ${typeof val}`);
      else {
        keys.add(key);
        query.push([key, val]);
      }
    }
  }
  return { name, path: canon.path, segments: canon.segments, query };
}

function readIdentity(c: Checker, v: unknown, p: string): ValidIdentity | null {
  if (!isObj(v)) return c.add('wrong_type', p, 'an identity must be an object');
  c.fields(v, p, ['name', 'userName', 'groupName', 'exePath', 'processName']);
  const name = c.str(v, 'name', p, true);
  const ident: ValidIdentity = {
    name: name ?? '',
    userName: c.str(v, 'userName', p, false),
    groupName: c.str(v, 'groupName', p, false),
    exePath: c.str(v, 'exePath', p, false),
    processName: c.str(v, 'processName', p, false),
  };
  if (name === null) return null;
  if (!ident.userName && !ident.groupName && !ident.exePath && !ident.processName)
    return c.add('empty_identity', p, 'set at least one of userName, groupName, exePath, processName');
  const exe = ident.exePath;
  if (exe !== null && (!exe.startsWith('/') || /\/\/|\/\.\.?(\/|$)|\/$/.test(exe)))
    return c.add('invalid_value', `${p}.exePath`, `"${exe}" must be an absolute, normalized path like /usr/bin/curl`);
  if (ident.processName?.includes('/'))
    return c.add('invalid_value', `${p}.processName`, 'a process name is a file name without /; use exePath for paths');
  return ident;
}
