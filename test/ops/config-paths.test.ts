/**
 * Config folders must be absolute paths of the platform the agent runs on: Linux paths everywhere,
 * and on Windows also drive-letter and UNC paths (docs/windows.md uses them).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isAbsolutePath, validateConfig } from '../../lib/agent/index.js';

test('Linux: only /… is absolute', () => {
  assert.equal(isAbsolutePath('/var/lib/azure-proxy-agent', 'linux'), true);
  for (const p of ['C:\\ProgramData\\gpa', 'relative/dir', '\\\\server\\share\\gpa', './log'])
    assert.equal(isAbsolutePath(p, 'linux'), false, p);
});

test('Windows: drive-letter, UNC and rooted paths are absolute; relative and drive-relative are not', () => {
  for (const p of ['C:\\ProgramData\\gpa', 'D:/gpa/log', '\\\\server\\share\\gpa', '/var/lib/azure-proxy-agent'])
    assert.equal(isAbsolutePath(p, 'win32'), true, p);
  for (const p of ['C:gpa', 'relative\\dir', '.\\log']) assert.equal(isAbsolutePath(p, 'win32'), false, p);
});

test('a Windows config validates on win32, with the rules folder beside the key folder', () => {
  const raw = {
    logFolder: 'C:\\ProgramData\\guest-proxy-agent\\log',
    latchKeyFolder: 'C:\\ProgramData\\guest-proxy-agent\\keys',
    pinDir: null,
  };
  const win = validateConfig(raw, 'win32');
  assert.deepEqual(win.errors, []);
  assert.equal(win.config.rulesFolder, 'C:\\ProgramData\\guest-proxy-agent\\rules');
  assert.equal(win.config.logFolder, raw.logFolder);
  const linux = validateConfig(raw, 'linux');
  // latchKeyFolder, logFolder, and the rules folder derived from the key folder.
  assert.equal(linux.errors.length, 3);
  assert.ok(
    linux.errors.some((e) =>
      /^logFolder must be an absolute path such as \/var\/lib\/azure-proxy-agent \(got "C:/.test(e),
    ),
    linux.errors.join('\n'),
  );
  assert.match(validateConfig({ logFolder: 'log' }, 'win32').errors[0]!, /such as C:\\ProgramData/);
});

test('Linux defaults are unchanged: rules beside the key folder', () => {
  const { config, errors } = validateConfig({ latchKeyFolder: '/srv/gpa/keys/' }, 'linux');
  assert.deepEqual(errors, []);
  assert.equal(config.rulesFolder, '/srv/gpa/rules');
  assert.equal(validateConfig({}, 'linux').config.rulesFolder, '/var/lib/azure-proxy-agent/rules');
});
