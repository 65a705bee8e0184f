import { parseStrictJson } from '../policy/index.js';

/** A validated `/secure-channel/status` answer. */
export interface SecureChannelStatus {
  version: '1.0' | '2.0';
  keyGuid: string | null;
  keyIncarnationId: number | null;
  keyDeliveryMethod: string;
  /** v1 only, lowercased. */
  secureChannelState?: string;
  /** v2 only. */
  secureChannelEnabled?: boolean;
  authorizationRules: Partial<Record<'imds' | 'wireserver' | 'hostga', Record<string, unknown>>> | null;
}

export const GUID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const V1_STATES = ['disabled', 'wireserver', 'wireserverandimds', 'audit'];

type Result = { ok: true; status: SecureChannelStatus } | { ok: false; message: string };

const fail = (message: string): Result => ({ ok: false, message: `secure-channel status rejected: ${message}` });

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseRules(v: unknown): SecureChannelStatus['authorizationRules'] | string {
  if (v === null || v === undefined) return null;
  if (!isObject(v)) return 'authorizationRules must be an object or null';
  const out: NonNullable<SecureChannelStatus['authorizationRules']> = {};
  for (const ep of ['imds', 'wireserver', 'hostga'] as const) {
    const item = v[ep];
    if (item === null || item === undefined) continue;
    if (!isObject(item)) return `authorizationRules.${ep} must be an object or null`;
    if (item.mode !== undefined && item.mode !== null && typeof item.mode !== 'string') {
      return `authorizationRules.${ep}.mode must be a string`;
    }
    if (item.id !== undefined && item.id !== null && typeof item.id !== 'string') {
      return `authorizationRules.${ep}.id must be a string`;
    }
    out[ep] = item;
  }
  return out;
}

/**
 * Validates a status body (v1 or v2). Anything unexpected is rejected with a message naming the
 * field, so the keeper keeps its last good state instead of acting on a half-understood answer.
 */
export function parseStatus(text: string, contentType: string | undefined): Result {
  if (contentType && /xml/i.test(contentType)) {
    return fail(`Content-Type ${contentType} (XML) is not supported; the host must answer JSON`);
  }
  // Strict parse: JSON.parse keeps the last of a duplicated key, which could quietly swap a mode
  // or a rule item; a duplicate, a BOM or an oversized body is refused instead.
  const parsed = parseStrictJson(text);
  if (!parsed.ok) return fail(`body is not valid JSON (${parsed.message})`);
  const doc: unknown = parsed.value;
  if (!isObject(doc)) return fail('body must be a JSON object');
  if (doc.authorizationScheme !== 'Azure-HMAC-SHA256') {
    return fail(`authorizationScheme must be "Azure-HMAC-SHA256" (got ${JSON.stringify(doc.authorizationScheme)})`);
  }
  if (doc.keyDeliveryMethod === 'vtpm') return fail('keyDeliveryMethod "vtpm" is not supported by this agent');
  if (doc.keyDeliveryMethod !== 'http') {
    return fail(`keyDeliveryMethod must be "http" (got ${JSON.stringify(doc.keyDeliveryMethod)})`);
  }
  const inc = doc.keyIncarnationId;
  if (inc !== null && inc !== undefined && !(Number.isSafeInteger(inc) && (inc as number) >= 0)) {
    return fail('keyIncarnationId must be a non-negative integer or null');
  }
  const guid = doc.keyGuid;
  if (guid !== null && guid !== undefined && !(typeof guid === 'string' && GUID_PATTERN.test(guid))) {
    return fail(`keyGuid ${JSON.stringify(String(guid).slice(0, 80))} is not a GUID`);
  }
  const claims = doc.requiredClaimsHeaderPairs;
  if (
    claims !== null &&
    claims !== undefined &&
    !(Array.isArray(claims) && claims.every((c) => typeof c === 'string'))
  ) {
    return fail('requiredClaimsHeaderPairs must be an array of strings or null');
  }
  const rules = parseRules(doc.authorizationRules);
  if (typeof rules === 'string') return fail(rules);
  const base = {
    keyGuid: (guid as string | null | undefined) ?? null,
    keyIncarnationId: (inc as number | null | undefined) ?? null,
    keyDeliveryMethod: 'http',
    authorizationRules: rules,
  };
  if (doc.version === '1.0') {
    const state = typeof doc.secureChannelState === 'string' ? doc.secureChannelState.toLowerCase() : undefined;
    if (!state || !V1_STATES.includes(state)) {
      return fail(
        `v1 secureChannelState must be Disabled, Wireserver, WireserverAndImds or Audit (got ${JSON.stringify(doc.secureChannelState)})`,
      );
    }
    return { ok: true, status: { ...base, version: '1.0', secureChannelState: state } };
  }
  if (doc.version === '2.0') {
    if (typeof doc.secureChannelEnabled !== 'boolean') return fail('v2 secureChannelEnabled must be true or false');
    return { ok: true, status: { ...base, version: '2.0', secureChannelEnabled: doc.secureChannelEnabled } };
  }
  return fail(`version must be "1.0" or "2.0" (got ${JSON.stringify(doc.version)})`);
}
