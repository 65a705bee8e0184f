/** The policy engine's public surface: see docs/policy.md. */

export type { Trace } from './authorize.js';
export { authorize, identityMatches, isSignatureExempt } from './authorize.js';
export type { CanonicalFailure, CanonicalResult, CanonicalTarget } from './canonicalize.js';
export { canonicalize, MAX_TARGET_LENGTH, renderCanonical } from './canonicalize.js';
export type { CanonicalizationCode, PolicyCode, PolicyProblemCode } from './codes.js';
export { PolicyCodes, PolicyProblemCodes } from './codes.js';
export type { CompileInput, CompileResult, EndpointPolicy, EndpointPolicyState, PolicySnapshot } from './compile.js';
export { compilePolicy, compilePolicyPure } from './compile.js';
export { evilTwins, selfTestSnapshot } from './evil-twin.js';
export { LOCAL_RULE_FILES, readLocalRuleFile, wantsLocalRules } from './local-rules.js';
export type { LoadedRules, RulesFileShape } from './rules-file.js';
export { loadRulesFile, rulesFromText } from './rules-file.js';
export { closeSelfTestPool, compilePolicyChecked, loadSelfTestPool, runSelfTest } from './selftest.js';
export type { StrictJsonResult } from './strict-json.js';
export { MAX_POLICY_TEXT_BYTES, parseStrictJson } from './strict-json.js';
export type { Access, CallerClaims, Decision, Endpoint, Mode, PolicyProblem, PolicyRequest } from './types.js';
export { ENDPOINTS } from './types.js';
