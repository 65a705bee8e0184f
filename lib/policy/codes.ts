/**
 * Stable reason codes. Every Decision carries one of PolicyCodes; every PolicyProblem one of
 * PolicyProblemCodes. docs/policy.md lists both tables; test/policy/codes-docs.test.ts keeps them in sync.
 * `status` is the HTTP status the proxy answers with when the request is not forwarded.
 */
export const PolicyCodes = {
  // decisions
  mode_disabled: { kind: 'decision', status: null, meaning: 'endpoint mode is disabled: not intercepted, forwarded' },
  root_required: { kind: 'decision', status: 403, meaning: 'WireServer/HostGAPlugin caller is not uid 0' },
  signature_exempt_root: { kind: 'decision', status: null, meaning: 'root caller on a signature-exempt upload path' },
  rule_allow: { kind: 'decision', status: null, meaning: 'a privilege matched and an identity assigned to it matched' },
  no_identity_match: { kind: 'decision', status: 403, meaning: 'privileges matched but no assigned identity matched' },
  query_conflict: { kind: 'decision', status: 403, meaning: 'a constrained query key has conflicting values' },
  default_allow: { kind: 'decision', status: null, meaning: 'no privilege matched; defaultAccess is allow' },
  default_deny: { kind: 'decision', status: 403, meaning: 'no privilege matched; defaultAccess is deny' },
  local_rules_deny: { kind: 'decision', status: 403, meaning: 'remote rules allow but the local rule file does not' },
  policy_fail_closed: { kind: 'decision', status: 403, meaning: 'the policy for this endpoint is broken: deny-all' },
  // canonicalization failures: never forwarded, in any mode
  target_not_origin_form: { kind: 'canonicalization', status: 400, meaning: 'target does not start with /' },
  target_too_long: { kind: 'canonicalization', status: 414, meaning: 'target longer than 8192 characters' },
  fragment: { kind: 'canonicalization', status: 400, meaning: 'target contains #' },
  nul_byte: { kind: 'canonicalization', status: 400, meaning: 'NUL, raw or %00' },
  control_char: { kind: 'canonicalization', status: 400, meaning: 'control character or space, raw or decoded' },
  non_ascii: { kind: 'canonicalization', status: 400, meaning: 'raw byte outside visible ASCII' },
  backslash: { kind: 'canonicalization', status: 400, meaning: 'backslash, raw anywhere or decoded in the path' },
  malformed_escape: { kind: 'canonicalization', status: 400, meaning: '% not followed by two hex digits' },
  overlong_utf8: { kind: 'canonicalization', status: 400, meaning: 'overlong UTF-8 encoding (e.g. %C0%AF)' },
  invalid_utf8: { kind: 'canonicalization', status: 400, meaning: 'decoded bytes are not valid UTF-8' },
  encoded_slash: { kind: 'canonicalization', status: 400, meaning: '%2F in the path' },
  encoded_question: { kind: 'canonicalization', status: 400, meaning: '%3F in the path' },
  encoded_delimiter: { kind: 'canonicalization', status: 400, meaning: '%23 or %3B in the path' },
  path_parameter: {
    kind: 'canonicalization',
    status: 400,
    meaning: '; in the path (a parameter, or a `..;` an upstream may not read as ..)',
  },
  encoded_non_ascii: {
    kind: 'canonicalization',
    status: 400,
    meaning: 'an escape decodes to non-ASCII in the path or a query key (look-alike letters)',
  },
  double_encoding: { kind: 'canonicalization', status: 400, meaning: '% after one decode in the path or a query key' },
  path_above_root: { kind: 'canonicalization', status: 403, meaning: '.. climbs above /' },
  ambiguous_segment: { kind: 'canonicalization', status: 400, meaning: 'a path segment ends with . or a space' },
} as const;

export type PolicyCode = keyof typeof PolicyCodes;
export type CanonicalizationCode = {
  [K in PolicyCode]: (typeof PolicyCodes)[K]['kind'] extends 'canonicalization' ? K : never;
}[PolicyCode];

/** Codes of PolicyProblem: what is wrong with a policy document. */
export const PolicyProblemCodes = {
  invalid_json: 'the text is not JSON (position given)',
  bom: 'the text starts with a byte order mark',
  duplicate_key: 'an object has the same key twice',
  too_large: 'document, list, string or nesting over its limit',
  unknown_field: 'a field the schema does not know',
  wrong_type: 'a field has the wrong JSON type',
  missing_field: 'a required field is missing',
  invalid_value: 'a field value is not allowed',
  duplicate_name: 'two privileges, roles or identities share a name',
  dangling_reference: 'a role or assignment names something that does not exist',
  noncanonical_path: 'a privilege path differs from its canonical form',
  empty_identity: 'an identity sets no selector (it would match everyone)',
  local_rules_unavailable: 'the rule id asks for local rules but the file cannot be read or trusted',
  evil_twin: 'a near-miss variant of a privilege path matched it (self-test)',
  kept_previous: 'the new policy is broken; the last good one with the same rule id stays',
  fail_closed: 'the policy is broken; the endpoint denies everything under its mode',
} as const;

export type PolicyProblemCode = keyof typeof PolicyProblemCodes;
