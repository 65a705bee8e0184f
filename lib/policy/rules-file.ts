import { readFileSync } from 'node:fs';
import type { CompileInput } from './compile.js';
import { parseStrictJson } from './strict-json.js';
import { ENDPOINTS, type Endpoint, type Mode, type PolicyProblem } from './types.js';

export type RulesFileShape = 'item' | 'authorizationRules' | 'statusResponse';

/** A rules file turned into compile input, for `gpa policy simulate` and `gpa policy check`. */
export interface LoadedRules {
  shape: RulesFileShape;
  input: CompileInput;
  /** Problems found before compiling (unparseable text). */
  problems: PolicyProblem[];
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function modeOf(v: unknown): Mode | null {
  if (!isObj(v) || typeof v['mode'] !== 'string') return null;
  const m = v['mode'].toLowerCase();
  return m === 'disabled' || m === 'audit' || m === 'enforce' ? m : null;
}

/**
 * Accepts one rule item (applied to `asEndpoint`), an `authorizationRules` object keyed by endpoint,
 * or a whole secure-channel status response. Modes come from `modeOverride`, else the item, else enforce.
 */
export function rulesFromText(text: string | Buffer, asEndpoint: Endpoint, modeOverride?: Mode): LoadedRules {
  const parsed = parseStrictJson(text);
  const modes = { imds: 'enforce', wireserver: 'enforce', hostga: 'enforce' } as Record<Endpoint, Mode>;
  if (!parsed.ok) {
    const problems: PolicyProblem[] = [
      { severity: 'error', code: parsed.code, endpoint: null, path: '$', message: parsed.message },
    ];
    return { shape: 'item', input: { modes, rules: {} }, problems };
  }
  let v = parsed.value;
  let shape: RulesFileShape = 'item';
  if (isObj(v) && 'authorizationRules' in v) {
    shape = 'statusResponse';
    v = v['authorizationRules'] ?? {};
  } else if (isObj(v)) {
    const o = v;
    if (ENDPOINTS.some((ep) => ep in o)) shape = 'authorizationRules';
  }
  const problems: PolicyProblem[] = [];
  const rules: CompileInput['rules'] = {};
  if (shape === 'item') rules[asEndpoint] = v;
  else if (!isObj(v))
    problems.push({
      severity: 'error',
      code: 'wrong_type',
      endpoint: null,
      path: '$',
      message: 'authorizationRules must be an object',
    });
  else
    for (const [k, item] of Object.entries(v)) {
      if ((ENDPOINTS as readonly string[]).includes(k)) rules[k as Endpoint] = item;
      else
        problems.push({
          severity: 'error',
          code: 'unknown_field',
          endpoint: null,
          path: k,
          message: `${k}: not imds, wireserver or hostga`,
        });
    }
  for (const ep of ENDPOINTS) modes[ep] = modeOverride ?? modeOf(rules[ep]) ?? 'enforce';
  // HostGAPlugin follows WireServer's mode, as the key keeper publishes it.
  if (!modeOverride && shape !== 'item') modes.hostga = modes.wireserver;
  return { shape, input: { modes, rules }, problems };
}

/** Reads and loads a rules file; throws an Error naming the file when it cannot be read. */
export function loadRulesFile(file: string, asEndpoint: Endpoint, modeOverride?: Mode): LoadedRules {
  let text: Buffer;
  try {
    text = readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read rules file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return rulesFromText(text, asEndpoint, modeOverride);
}
