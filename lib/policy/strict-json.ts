import type { PolicyProblemCode } from './codes.js';

/** Limits for policy text; a 20 MB document is refused before it is parsed. */
export const MAX_POLICY_TEXT_BYTES = 4 * 1024 * 1024;
export const MAX_JSON_DEPTH = 32;

export type StrictJsonResult = { ok: true; value: unknown } | { ok: false; code: PolicyProblemCode; message: string };

class JsonError extends Error {
  constructor(
    readonly code: PolicyProblemCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Parses JSON strictly: refuses a byte order mark, duplicate keys (JSON.parse silently keeps the
 * last, so a later key could quietly loosen a rule), nesting deeper than MAX_JSON_DEPTH and text over
 * MAX_POLICY_TEXT_BYTES. Objects have no prototype, so `__proto__` is an ordinary key.
 */
export function parseStrictJson(text: string | Buffer): StrictJsonResult {
  const bytes = typeof text === 'string' ? Buffer.byteLength(text) : text.length;
  if (bytes > MAX_POLICY_TEXT_BYTES)
    return {
      ok: false,
      code: 'too_large',
      message: `document is ${bytes} bytes; the limit is ${MAX_POLICY_TEXT_BYTES}`,
    };
  const s = typeof text === 'string' ? text : text.toString('utf8');
  if (s.charCodeAt(0) === 0xfeff)
    return { ok: false, code: 'bom', message: 'document starts with a byte order mark; save it as UTF-8 without BOM' };
  try {
    const p = new Parser(s);
    p.ws();
    const value = p.value(0, '$');
    p.ws();
    if (p.i !== s.length) p.fail('unexpected text after the JSON value');
    return { ok: true, value };
  } catch (e) {
    if (e instanceof JsonError) return { ok: false, code: e.code, message: e.message };
    throw e;
  }
}

class Parser {
  i = 0;
  constructor(readonly s: string) {}

  fail(what: string, code: PolicyProblemCode = 'invalid_json'): never {
    const line = this.s.slice(0, this.i).split('\n').length;
    throw new JsonError(code, `${what} at line ${line}, offset ${this.i}`);
  }

  ws(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      this.i++;
    }
  }

  value(depth: number, path: string): unknown {
    if (depth > MAX_JSON_DEPTH) this.fail(`nesting deeper than ${MAX_JSON_DEPTH} at ${path}`, 'too_large');
    const c = this.s[this.i];
    if (c === '{') return this.object(depth, path);
    if (c === '[') return this.array(depth, path);
    if (c === '"') return this.string();
    if (c === 't') return this.literal('true', true);
    if (c === 'f') return this.literal('false', false);
    if (c === 'n') return this.literal('null', null);
    return this.number();
  }

  object(depth: number, path: string): Record<string, unknown> {
    const out: Record<string, unknown> = Object.create(null);
    this.i++;
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      return out;
    }
    for (;;) {
      if (this.s[this.i] !== '"') this.fail('expected a quoted key');
      const key = this.string();
      if (Object.hasOwn(out, key)) this.fail(`duplicate key ${JSON.stringify(key)} in ${path}`, 'duplicate_key');
      this.ws();
      if (this.s[this.i] !== ':') this.fail('expected :');
      this.i++;
      this.ws();
      out[key] = this.value(depth + 1, `${path}.${key}`);
      this.ws();
      const c = this.s[this.i++];
      if (c === '}') return out;
      if (c !== ',') this.fail('expected , or }');
      this.ws();
    }
  }

  array(depth: number, path: string): unknown[] {
    const out: unknown[] = [];
    this.i++;
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1, `${path}[${out.length}]`));
      this.ws();
      const c = this.s[this.i++];
      if (c === ']') return out;
      if (c !== ',') this.fail('expected , or ]');
      this.ws();
    }
  }

  string(): string {
    // Find the closing quote, then let JSON.parse decode the escapes of this one token.
    const start = this.i;
    let i = start + 1;
    const s = this.s;
    for (;;) {
      if (i >= s.length) this.fail('unterminated string');
      const c = s.charCodeAt(i);
      if (c === 0x22) break;
      if (c === 0x5c) i++;
      else if (c < 0x20) {
        this.i = i;
        this.fail('control character in string');
      }
      i++;
    }
    this.i = i + 1;
    try {
      return JSON.parse(s.slice(start, i + 1)) as string;
    } catch {
      this.i = start;
      return this.fail('invalid escape in string');
    }
  }

  literal<T>(word: string, v: T): T {
    if (!this.s.startsWith(word, this.i)) this.fail('unexpected token');
    this.i += word.length;
    return v;
  }

  number(): number {
    const m = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    m.lastIndex = this.i;
    const r = m.exec(this.s);
    if (!r) return this.fail('unexpected token');
    this.i += r[0].length;
    return Number(r[0]);
  }
}
