import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { canonicalize, renderCanonical } from '../../lib/policy/index.js';

const ok = (raw: string) => {
  const r = canonicalize(raw);
  assert.ok(r.ok, `${raw} should canonicalize, got ${r.ok ? '' : r.code}`);
  return r;
};

describe('canonicalize: accepted forms', () => {
  const rows: [string, string][] = [
    ['/', '/'],
    ['/metadata/instance', '/metadata/instance'],
    ['/Metadata/INSTANCE', '/metadata/instance'],
    ['/metadata//instance/', '/metadata/instance'],
    ['/metadata/./instance', '/metadata/instance'],
    ['/metadata/x/../instance', '/metadata/instance'],
    ['/metadata/x/%2e%2E/instance', '/metadata/instance'],
    ['/metadata/%69nstance', '/metadata/instance'],
    ['//metadata/instance', '/metadata/instance'],
    ['/metadata/instance?x=a;b', '/metadata/instance'],
  ];
  for (const [raw, path] of rows) test(`${raw} -> ${path}`, () => assert.equal(ok(raw).path, path));

  test('query keys lowercased, values decoded once, duplicates kept, empty keys dropped', () => {
    const r = ok('/x?API-Version=2021&b=%252F&b=2&=z&&flag&resource=https%3A%2F%2Fm');
    assert.deepEqual(
      [...r.query],
      [
        ['api-version', ['2021']],
        ['b', ['%2F', '2']],
        ['flag', ['']],
        ['resource', ['https://m']],
      ],
    );
  });
});

describe('canonicalize: refused forms and their codes', () => {
  const rows: [string, string][] = [
    ['', 'target_not_origin_form'],
    ['http://evil/x', 'target_not_origin_form'],
    ['*', 'target_not_origin_form'],
    ['/metadata%2Fidentity', 'encoded_slash'],
    ['/metadata%2fidentity', 'encoded_slash'],
    ['/metadata/instance%3F/../identity', 'encoded_question'],
    ['/metadata%252Fidentity', 'double_encoding'],
    ['/metadata\\identity', 'backslash'],
    ['/metadata%5cidentity', 'backslash'],
    ['/metadata/%C0%AFidentity', 'encoded_non_ascii'],
    ['/caf%C3%A9', 'encoded_non_ascii'],
    ['/metadata/%C4%B1dentity/oauth2/token', 'encoded_non_ascii'], // dotless i
    ['/metadata/identity/oauth2/to%E2%84%AAen', 'encoded_non_ascii'], // Kelvin sign
    ['/x?%C4%B1=1', 'encoded_non_ascii'],
    ['/x?a=%E0%80%AF', 'overlong_utf8'],
    ['/x?a=%F0%80%80%AF', 'overlong_utf8'],
    ['/x?a=%ED%A0%80', 'invalid_utf8'],
    ['/x?a=%FF', 'invalid_utf8'],
    ['/x?a=%C3', 'invalid_utf8'],
    ['/x?a=%C2%85', 'control_char'],
    ['/metadata/instance;x=1', 'path_parameter'],
    ['/metadata;a/instance', 'path_parameter'],
    ['/metadata/identity/..;/..;/instance', 'path_parameter'],
    ['/metadata/%00', 'nul_byte'],
    ['/metadata/\u0000', 'nul_byte'],
    ['/metadata/%0a', 'control_char'],
    ['/metadata/a b', 'control_char'],
    ['/metadata/\u00e9', 'non_ascii'],
    ['/metadata/%', 'malformed_escape'],
    ['/metadata/%4', 'malformed_escape'],
    ['/metadata/%zz', 'malformed_escape'],
    ['/metadata/x#frag', 'fragment'],
    ['/..', 'path_above_root'],
    ['/metadata/../../x', 'path_above_root'],
    ['/metadata/%2e%2e/%2e%2e', 'path_above_root'],
    ['/metadata/instance.', 'ambiguous_segment'],
    ['/metadata/instance%20', 'ambiguous_segment'],
    ['/metadata/...', 'ambiguous_segment'],
    ['/metadata/a%3Bb', 'encoded_delimiter'],
    ['/x?a=%00', 'nul_byte'],
    ['/x?a%25=1', 'double_encoding'],
    ['/x?a=%C0%AF', 'overlong_utf8'],
    ['/x?a=%G1', 'malformed_escape'],
    [`/${'a'.repeat(9000)}`, 'target_too_long'],
  ];
  for (const [raw, code] of rows) {
    test(`${JSON.stringify(raw.slice(0, 40))} -> ${code}`, () => {
      const r = canonicalize(raw);
      assert.equal(r.ok, false);
      assert.equal(r.ok ? '' : r.code, code);
    });
  }
});

// Arbitrary raw targets built from the characters attackers use.
const rawChar = fc.constantFrom(
  'a',
  'B',
  'z',
  '0',
  '-',
  '.',
  '/',
  ';',
  '=',
  '&',
  '?',
  '%',
  '2',
  'e',
  'E',
  'f',
  'F',
  'C',
  '5',
  '~',
  '_',
  ':',
  '@',
);
const rawTarget = fc.array(rawChar, { maxLength: 40 }).map((cs) => `/${cs.join('')}`);

describe('canonicalize: properties', () => {
  test('idempotent: canonicalize(render(c)) equals c', () => {
    fc.assert(
      fc.property(rawTarget, (raw) => {
        const a = canonicalize(raw);
        if (!a.ok) return;
        const b = canonicalize(renderCanonical(a));
        assert.ok(b.ok, `render of ${raw} refused`);
        assert.equal(b.path, a.path);
        assert.deepEqual([...b.query], [...a.query]);
        assert.equal(renderCanonical(b), renderCanonical(a));
      }),
      { numRuns: 5000 },
    );
  });

  test('a canonical path never contains empty, . or .. segments, and is lowercase ASCII', () => {
    fc.assert(
      fc.property(rawTarget, (raw) => {
        const a = canonicalize(raw);
        if (!a.ok) return;
        for (const s of a.segments) {
          assert.ok(s !== '' && s !== '.' && s !== '..', `bad segment in ${a.path} from ${raw}`);
          assert.ok(!/[A-Z/?#\\%]/.test(s), `segment ${s} from ${raw}`);
        }
      }),
      { numRuns: 5000 },
    );
  });

  test('unicode input never crashes and never yields control characters', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (s) => {
        const r = canonicalize(`/${s}`);
        if (r.ok) assert.ok(!/[\u0000-\u001f\u007f-\u009f]/.test(r.path));
      }),
      { numRuns: 3000 },
    );
  });
});
