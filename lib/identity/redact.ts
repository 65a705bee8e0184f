/**
 * Redaction of command lines before they reach any log, summary, status or metric (spec section 6).
 * Applied once, when the claims are built, so no later consumer can forget it. Over-redacting a
 * harmless token is acceptable; leaking a secret is not.
 */

/** Longest command line kept (after redaction); the rest is cut with a marker. */
export const MAX_CMDLINE = 1024;
const MAX_SCAN = 16 * 1024;
const MASK = '***';

const PEM = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g;
// The scheme is bounded: unbounded, `a.a.a.…` made every word start scan to the end of the string
// (quadratic: 65 ms for 16 KiB, run for every new process that connects).
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]{0,31}:\/\/)[^/\s:@]+:[^/\s@]*@/gi;
const BEARER = /\b(bearer)(\s+|=|%20)[A-Za-z0-9._~+/=-]+/gi;
const JWT = /\beyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){0,2}/g;
// key=value and key:value secrets, in query strings, connection strings and flags.
const KEY_VALUE =
  /\b(pwd|passwd|password|accountkey|sharedaccesskey|sig|secret|client_secret|access_token|refresh_token|token|apikey|api_key)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s&;,'"]+)/gi;
// `--password value` / `-p value` style flags.
const FLAG_VALUE =
  /(--?(?:password|passwd|pwd|secret|token|client-secret|account-key|sas))(\s+|=)("[^"]*"|'[^']*'|\S+)/gi;
// Storage-key-shaped base64: long, mixed case and digits (a 64-byte key is 88 characters).
const BASE64_BLOB = /(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40,}={0,2}(?![A-Za-z0-9+/=])/g;

function looksLikeKey(s: string): boolean {
  return /[0-9]/.test(s) && /[a-z]/.test(s) && /[A-Z]/.test(s);
}

/** Returns `cmdline` with secrets masked and control characters replaced, at most MAX_CMDLINE long. */
export function redactCmdline(cmdline: string): string {
  let s = cmdline.length > MAX_SCAN ? cmdline.slice(0, MAX_SCAN) : cmdline;
  // Control characters (newlines included) become spaces: a process cannot shape log lines.
  s = s.replace(/[\u0000-\u001f\u007f]/g, ' ');
  s = s.replace(PEM, '-----PRIVATE KEY ' + MASK + '-----');
  if (s.includes('://')) s = s.replace(URL_CREDENTIALS, '$1' + MASK + '@');
  s = s.replace(BEARER, '$1$2' + MASK);
  if (s.includes('eyJ')) s = s.replace(JWT, MASK);
  s = s.replace(KEY_VALUE, '$1$2' + MASK);
  s = s.replace(FLAG_VALUE, '$1$2' + MASK);
  s = s.replace(BASE64_BLOB, (m) => (looksLikeKey(m) ? MASK : m));
  if (s.length > MAX_CMDLINE) s = s.slice(0, MAX_CMDLINE) + '…';
  return s;
}
