import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { authorize, compilePolicy } from '../../lib/policy/index.js';
import { caller, item, modes } from './fixtures.js';

/**
 * An independent model of where a raw path goes: decodeURIComponent per segment, dot resolution.
 * Returns null when the path is ambiguous (a decoded / \ % or an unresolvable climb).
 */
function modelPath(raw: string): string | null {
  const q = raw.indexOf('?');
  const p = q === -1 ? raw : raw.slice(0, q);
  const out: string[] = [];
  for (const rawSeg of p.split('/')) {
    let seg: string;
    try {
      seg = decodeURIComponent(rawSeg.split(';')[0]!);
    } catch {
      return null;
    }
    if (/[/\\%?#]/.test(seg)) return null;
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) return null;
      out.pop();
      continue;
    }
    out.push(seg.toLowerCase());
  }
  return `/${out.join('/')}`;
}

const inside = (path: string, base: string) => path === base || path.startsWith(`${base}/`);

const segment = fc.stringMatching(/^[a-z0-9-]{1,6}$/);
const allowedPath = fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => `/${s.join('/')}`);

const pct = (ch: string) => `%${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
type Mutation = (s: string, r: number) => string;
const mutations: Mutation[] = [
  (s, r) => {
    const i = 1 + (r % (s.length - 1 || 1));
    return s.slice(0, i) + s[i]!.toUpperCase() + s.slice(i + 1);
  },
  (s, r) => {
    const i = 1 + (r % (s.length - 1 || 1));
    return s[i] === '/' ? s : s.slice(0, i) + pct(s[i]!) + s.slice(i + 1);
  },
  (s, r) => {
    const i = 1 + (r % (s.length - 1 || 1));
    return s[i] === '/' ? s : `${s.slice(0, i)}%25${pct(s[i]!).slice(1)}${s.slice(i + 1)}`;
  },
  (s) => s.replace('/', '/./'),
  (s) => s.replace('/', '//'),
  (s, r) => s.replace(/\/[^/]*$/, (m) => `${m}/x${r % 10}/..`),
  (s) => `${s}/..`,
  (s) => `${s}/../../x`,
  (s, r) => `${s}${'x-.'[r % 3]}`,
  (s) => `${s};x=1`,
  (s) => s.replace(/\/([^/]*)$/, '%2f$1'),
  (s) => s.replace(/\/([^/]*)$/, '/%2e%2e/$1x'),
  (s) => `${s}/sub`,
  (s) => s.slice(0, -1),
];
const variant = (base: string) =>
  fc
    .array(fc.tuple(fc.nat(mutations.length - 1), fc.nat(1000)), { minLength: 1, maxLength: 5 })
    .map((ops) => ops.reduce((s, [m, r]) => (s.length < 2 ? s : mutations[m]!(s, r)), base));

describe('property: nothing outside the allowed subtree is ever allowed', () => {
  test('mutated variants of an allowed path', () => {
    fc.assert(
      fc.property(
        allowedPath.chain((p) => fc.tuple(fc.constant(p), variant(p))),
        ([allowed, raw]) => {
          const { snapshot } = compilePolicy({
            modes: modes(),
            rules: {
              imds: item({
                privileges: [{ name: 'p', path: allowed }],
                identities: [{ name: 'u1', userName: 'u1' }],
                grants: { p: ['u1'] },
              }),
            },
          });
          const d = authorize(snapshot, { endpoint: 'imds', method: 'GET', rawTarget: raw }, caller());
          if (!d.forward) return;
          const model = modelPath(raw);
          assert.ok(model !== null, `${raw} allowed but ambiguous`);
          assert.ok(inside(model, allowed), `${raw} allowed under ${allowed} but goes to ${model}`);
          assert.equal(d.canonicalPath, model);
        },
      ),
      { numRuns: 4000 },
    );
  });

  test('random targets from an attacker alphabet against a fixed policy', () => {
    const { snapshot } = compilePolicy({
      modes: modes(),
      rules: {
        imds: item({
          privileges: [{ name: 'i', path: '/metadata/instance' }],
          identities: [{ name: 'u1', userName: 'u1' }],
          grants: { i: ['u1'] },
        }),
      },
    });
    const piece = fc.constantFrom(
      '/',
      'metadata',
      'instance',
      'identity',
      '.',
      '..',
      '%2e',
      '%2f',
      '%2F',
      '%252f',
      ';',
      'x',
      'I',
      '%69',
      '%5c',
      '%c0%af',
      '?',
      '=',
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (parts) => {
        const raw = `/${parts.join('')}`;
        const d = authorize(snapshot, { endpoint: 'imds', method: 'GET', rawTarget: raw }, caller());
        if (!d.forward) return;
        const model = modelPath(raw);
        assert.ok(model !== null && inside(model, '/metadata/instance'), `${raw} allowed, model ${model}`);
      }),
      { numRuns: 20000 },
    );
  });
});
