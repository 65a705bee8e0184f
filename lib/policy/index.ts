/** The policy engine's public surface: see docs/policy.md. */
export type { CanonicalFailure, CanonicalResult, CanonicalTarget } from './canonicalize.js';
export { canonicalize, renderCanonical } from './canonicalize.js';
export type { CanonicalizationCode, PolicyCode, PolicyProblemCode } from './codes.js';
export { PolicyCodes, PolicyProblemCodes } from './codes.js';
export type { Access, CallerClaims, Decision, Endpoint, Mode, PolicyProblem, PolicyRequest } from './types.js';
export { ENDPOINTS } from './types.js';
