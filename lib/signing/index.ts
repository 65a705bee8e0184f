// Public surface of the signing part: the string to sign and HMAC of spec section 4, shared by the
// data plane (forwarded requests), the key keeper (its own signed calls) and the emulator (verifier).
export { isSignatureExempt } from './exempt.js';
export {
  AUTHORIZATION_SCHEME,
  authorizationHeaderValue,
  hmacHex,
  type NativeHmac,
  parseAuthorizationHeader,
  SigningKey,
  signRequest,
  verifySignature,
} from './hmac.js';
export {
  HOST_CLAIMS_HEADER,
  HOST_DATE_HEADER,
  isReservedHostHeader,
  NON_ROOT_CLAIMS,
  ROOT_CLAIMS,
  rfc1123,
} from './host-headers.js';
export {
  AUTHORIZATION_HEADER,
  canonicalHeaders,
  canonicalQuery,
  type SignableRequest,
  splitTarget,
  stringToSign,
} from './string-to-sign.js';
