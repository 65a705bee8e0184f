// The structs shared with the kernel have one layout: the BPF object's BTF, the addon's compiler
// and the TypeScript constants agree.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { addonPath, bpfObjectPath, nativeLayoutSizes, STRUCT_SIZES } from '../../lib/redirector/index.js';
import { ebpfRequired } from '../helpers/ebpf-env.js';

const built = existsSync(addonPath()) && existsSync(bpfObjectPath());
const skip = !built && !ebpfRequired() ? 'addon or BPF object not built' : false;

test('addon struct sizes equal the TypeScript constants', { skip }, () => {
  assert.deepEqual(nativeLayoutSizes(), { ...STRUCT_SIZES });
});

test('BTF of the built BPF object has the same struct sizes', { skip }, () => {
  const r = spawnSync('bpftool', ['-j', 'btf', 'dump', 'file', bpfObjectPath()], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const types = (JSON.parse(r.stdout) as { types: { kind: string; name: string; size?: number }[] }).types;
  const size = (name: string) => types.find((t) => t.kind === 'STRUCT' && t.name === name)?.size;
  assert.equal(size('gpa_endpoint'), STRUCT_SIZES.endpoint);
  assert.equal(size('gpa_origin'), STRUCT_SIZES.origin);
  assert.equal(size('gpa_conn_key'), STRUCT_SIZES.connKey);
});
