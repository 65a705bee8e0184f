/** Types shared by the policy engine's files. Endpoint and Mode mirror lib/keykeeper's contract. */
export type Endpoint = 'imds' | 'wireserver' | 'hostga';
export type Mode = 'disabled' | 'audit' | 'enforce';
export type Access = 'allow' | 'deny';

export const ENDPOINTS: readonly Endpoint[] = ['imds', 'wireserver', 'hostga'];

/** Who made the request, as lib/identity attributes it (structurally the same type). */
export interface CallerClaims {
  pid: number;
  uid: number;
  gid: number;
  userName: string | null;
  groups: { gid: number; name: string | null }[];
  exePath: string | null;
  processName: string;
  cmdline: string;
  cgroupId: bigint;
}

/** The request as the proxy received it: `rawTarget` is the origin-form target, byte for byte. */
export interface PolicyRequest {
  endpoint: Endpoint;
  method: string;
  rawTarget: string;
}

/** The result of authorize(); `code` is a key of PolicyCodes. */
export interface Decision {
  outcome: 'allow' | 'deny' | 'audit-deny';
  forward: boolean;
  status?: number;
  code: string;
  endpoint: Endpoint;
  mode: Mode;
  ruleId: string | null;
  privilege?: string;
  role?: string;
  identity?: string;
  canonicalPath?: string;
  signatureExempt: boolean;
  /** Snapshot version that decided, for the audit record. */
  policyVersion: number;
}

/** One thing wrong with a policy document; `path` points at the offending element. */
export interface PolicyProblem {
  severity: 'error' | 'warning';
  code: string;
  endpoint: Endpoint | null;
  path: string;
  message: string;
}
