import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { MAX_POLICY_TEXT_BYTES, parseStrictJson } from './strict-json.js';
import type { Endpoint } from './types.js';

/** Which local file tightens which endpoint: HostGAPlugin shares WireServer's rules. */
export const LOCAL_RULE_FILES = { imds: 'IMDS_Rules.json', wireserver: 'WireServer_Rules.json' } as const;
export type LocalRuleFileKey = keyof typeof LOCAL_RULE_FILES;

export const localFileKey = (ep: Endpoint): LocalRuleFileKey => (ep === 'imds' ? 'imds' : 'wireserver');

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * True when the rule id is base64 of a JSON object with `useLocalFileRules: true` (the boolean).
 * Any other id is opaque and means "no local rules".
 */
export function wantsLocalRules(ruleId: string | null): boolean {
  if (!ruleId || ruleId.length > 4096 || !BASE64.test(ruleId)) return false;
  const parsed = parseStrictJson(Buffer.from(ruleId, 'base64'));
  if (!parsed.ok || typeof parsed.value !== 'object' || parsed.value === null) return false;
  return (parsed.value as Record<string, unknown>)['useLocalFileRules'] === true;
}

export type LocalFileRead = { ok: true; text: Buffer } | { ok: false; message: string };

/**
 * Reads one local rule file. Off the hot path (compile time only). When the agent runs as root the
 * file must be root-owned and not group/world-writable: local rules only tighten, but a file anyone
 * can write lets anyone deny service, so we refuse it and fail closed.
 */
export function readLocalRuleFile(dir: string, key: LocalRuleFileKey): LocalFileRead {
  const file = path.join(dir, LOCAL_RULE_FILES[key]);
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    return { ok: false, message: `${file}: cannot open (${(e as NodeJS.ErrnoException).code ?? String(e)})` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { ok: false, message: `${file}: not a regular file` };
    if (process.getuid?.() === 0 && (st.uid !== 0 || (st.mode & 0o022) !== 0))
      return { ok: false, message: `${file}: must be owned by root and not group/world-writable (chmod 644)` };
    if (st.size > MAX_POLICY_TEXT_BYTES)
      return { ok: false, message: `${file}: ${st.size} bytes; the limit is ${MAX_POLICY_TEXT_BYTES}` };
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return { ok: true, text: buf.subarray(0, off) };
  } finally {
    closeSync(fd);
  }
}
