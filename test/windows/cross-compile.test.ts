// Windows backend checks that run on Linux: scripts/ci.d/20-windows-cross.sh must pass on the
// real tree and must FAIL when a Windows source has a type error, the BPF program has one, or
// the kernel/user struct layouts drift. Runs when mingw-w64 and clang are present; with
// GPA_REQUIRE_WINDOWS_CROSS=1 (set by the CI script after installing them) missing tools fail.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const script = path.join(repo, 'scripts', 'ci.d', '20-windows-cross.sh');

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

const toolsPresent =
  (have('x86_64-w64-mingw32-g++-posix') || have('x86_64-w64-mingw32-g++')) &&
  have('x86_64-w64-mingw32-gcc') &&
  have('clang') &&
  have('llvm-objdump');
const required = process.env.GPA_REQUIRE_WINDOWS_CROSS === '1';
const skip = toolsPresent
  ? false
  : 'mingw-w64/clang/llvm not installed (scripts/ci.d/20-windows-cross.sh installs them in CI)';

interface CheckRun {
  status: number | null;
  output: string;
}

function runChecks(root?: string): CheckRun {
  const env = { ...process.env };
  if (root) env.GPA_WIN_ROOT = root;
  else delete env.GPA_WIN_ROOT;
  const r = spawnSync('bash', [script, '--no-install', '--checks-only'], {
    cwd: repo,
    env,
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { status: r.status, output: `${r.stdout}\n${r.stderr}` };
}

// A copy of exactly what the script reads, so an injected error never touches the real tree.
const copies: string[] = [];
function copyTree(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'gpa-win-cross-'));
  copies.push(dir);
  cpSync(path.join(repo, 'native'), path.join(dir, 'native'), { recursive: true });
  cpSync(path.join(repo, 'test', 'windows', 'layout_probe.c'), path.join(dir, 'test', 'windows', 'layout_probe.c'));
  return dir;
}

function edit(file: string, from: string, to: string): void {
  const text = readFileSync(file, 'utf8');
  assert.ok(text.includes(from), `${file} no longer contains the text the test edits: ${from}`);
  writeFileSync(file, text.replace(from, to));
}

after(() => {
  for (const dir of copies) rmSync(dir, { recursive: true, force: true });
});

describe('windows cross checks', () => {
  test('tools are present when CI requires them', () => {
    if (required) assert.ok(toolsPresent, 'GPA_REQUIRE_WINDOWS_CROSS=1 but mingw-w64/clang/llvm are missing');
  });

  test('the real tree passes every check', { skip }, () => {
    const r = runChecks();
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /ok {3}\S+ -fsyntax-only native\/src\/windows\/win_redirector\.cc/);
    assert.match(r.output, /helper ids called: 1 2 19 20 21 65537/);
    assert.match(r.output, /layouts agree/);
  });

  test('a type error in a Windows C++ source fails the cross compile', { skip }, () => {
    const root = copyTree();
    edit(
      path.join(root, 'native', 'src', 'windows', 'win_redirector.cc'),
      'key.port = htons(rule.dstPort);',
      'key.port = std::string("not a port");',
    );
    const r = runChecks(root);
    assert.notEqual(r.status, 0, r.output);
    assert.match(r.output, /FAIL: \S+ -fsyntax-only native\/src\/windows\/win_redirector\.cc/);
  });

  test('a type error in the Windows BPF program fails the BPF compile', { skip }, () => {
    const root = copyTree();
    edit(
      path.join(root, 'native', 'bpf', 'windows', 'redirect_win.bpf.c'),
      'rec.orig_port = ctx->user_port;',
      'rec.orig_port = ctx->user_port_typo;',
    );
    const r = runChecks(root);
    assert.notEqual(r.status, 0, r.output);
    assert.match(r.output, /FAIL: clang -target bpf/);
  });

  test('a field whose size differs between BPF and x64 Windows fails the layout check', { skip }, () => {
    const root = copyTree();
    const header = path.join(root, 'native', 'bpf', 'windows', 'redirect_win.h');
    // `long` is 8 bytes on BPF and 4 on Windows (LLP64): the classic drift.
    edit(header, '  uint32_t reserved;', '  long reserved;');
    edit(header, 'GPA_WIN_STATIC_ASSERT(sizeof(struct gpa_win_conn_record) == 32, "gpa_win_conn_record size");', '');
    const r = runChecks(root);
    assert.notEqual(r.status, 0, r.output);
    assert.match(r.output, /struct layout differs: bpf \[/);
  });
});
