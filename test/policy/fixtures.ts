import type { CallerClaims, Endpoint, Mode } from '../../lib/policy/index.js';
import { authorize, compilePolicy } from '../../lib/policy/index.js';

/** A caller as lib/identity would describe it. */
export function caller(over: Partial<CallerClaims> = {}): CallerClaims {
  return {
    pid: 4242,
    uid: 1001,
    gid: 1001,
    userName: 'u1',
    groups: [{ gid: 1001, name: 'u1' }],
    exePath: '/usr/bin/curl',
    processName: 'curl',
    cmdline: 'curl http://169.254.169.254/',
    cgroupId: 1n,
    ...over,
  };
}

export const root = (over: Partial<CallerClaims> = {}) =>
  caller({ uid: 0, gid: 0, userName: 'root', groups: [{ gid: 0, name: 'root' }], ...over });

export interface PrivSpec {
  name: string;
  path: string;
  queryParameters?: Record<string, string>;
}

/** An item granting each privilege to the given identities through one role per privilege. */
export function item(
  opts: {
    defaultAccess?: string;
    mode?: string;
    id?: string;
    privileges?: PrivSpec[];
    identities?: Record<string, unknown>[];
    grants?: Record<string, string[]>;
  } = {},
) {
  const privileges = opts.privileges ?? [];
  const grants = opts.grants ?? {};
  return {
    defaultAccess: opts.defaultAccess ?? 'deny',
    mode: opts.mode ?? 'enforce',
    id: opts.id ?? 'rules-1',
    rules: {
      privileges,
      roles: privileges.map((p) => ({ name: `role-${p.name}`, privileges: [p.name] })),
      identities: opts.identities ?? [],
      roleAssignments: Object.entries(grants).map(([priv, ids]) => ({ role: `role-${priv}`, identities: ids })),
    },
  };
}

export const modes = (m: Partial<Record<Endpoint, Mode>> = {}): Record<Endpoint, Mode> => ({
  imds: m.imds ?? 'enforce',
  wireserver: m.wireserver ?? 'enforce',
  hostga: m.hostga ?? m.wireserver ?? 'enforce',
});

/** Compiles one IMDS item under `mode` and returns a decide(target, caller) function. */
export function imdsPolicy(it: unknown, mode: Mode = 'enforce') {
  const r = compilePolicy({ modes: modes({ imds: mode }), rules: { imds: it } });
  const decide = (rawTarget: string, c: CallerClaims = caller(), method = 'GET') =>
    authorize(r.snapshot, { endpoint: 'imds', method, rawTarget }, c);
  return { ...r, decide };
}
