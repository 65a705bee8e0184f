/**
 * Config keys: the agent reports every key it does not know, at any depth (a misspelt nested key
 * must not pass as a default silently), refuses addresses that are not IP literals, and the operator
 * commands read exactly the keys the agent reads, so they look where the agent is.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { connectionLimits, validateConfig } from '../../lib/agent/index.js';
import { checkPins, OPERATOR_DEFAULTS, readOperatorConfig } from '../../lib/status/index.js';

test('unknown keys are reported at every depth, naming the path and the keys that exist', () => {
  const { errors, warnings } = validateConfig({
    audit: { maxbytes: 1 },
    timeouts: { header: 5 },
    metrics: { host: '0.0.0.0' },
    listener: { port: 3080, adress: '127.0.0.2' },
    endpoints: { imds: { upstream: { address: '127.0.0.1' } } },
  });
  assert.deepEqual(errors, []);
  assert.deepEqual(warnings.sort(), [
    "unknown config key 'audit.maxbytes' is ignored (maxBytes, maxFiles)",
    "unknown config key 'endpoints.imds.upstream.address' is ignored (host, port)",
    "unknown config key 'listener.adress' is ignored (address, port)",
    "unknown config key 'metrics.host' is ignored (address, port)",
    "unknown config key 'timeouts.header' is ignored (headerMs, keepAliveMs, responseMs, connectMs)",
  ]);
  assert.deepEqual(validateConfig({ audit: { maxBytes: 8192 } }).warnings, []);
});

test('an address must be an IPv4 or IPv6 literal', () => {
  for (const bad of ['dead', 'beef', 'fe80::1::2', 'localhost'])
    assert.match(
      validateConfig({ endpoints: { imds: { address: bad } } }).errors.join('\n'),
      /endpoints\.imds\.address must be an IPv4 or IPv6 literal/,
      bad,
    );
  for (const good of ['169.254.169.254', 'fd00::1', '::ffff:a9fe:a9fe'])
    assert.deepEqual(validateConfig({ endpoints: { imds: { address: good } } }).errors, [], good);
});

test("the operator commands read the agent's keys only, and pinDir null as off", () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gpa-config-keys-'));
  try {
    const file = path.join(dir, 'proxy-agent.json');
    // Names the agent ignores: the commands must not look for the agent there.
    writeFileSync(file, JSON.stringify({ listenerPort: 3180, metricsAddress: '127.0.0.9', pinDir: null }));
    const ignored = readOperatorConfig(file);
    assert.equal(ignored.listenerPort, OPERATOR_DEFAULTS.listenerPort);
    assert.equal(ignored.metricsAddress, OPERATOR_DEFAULTS.metricsAddress);
    assert.equal(ignored.pinDir, null);
    assert.match(checkPins(ignored.pinDir, true).message, /pinning is off/);
    writeFileSync(file, JSON.stringify({ listener: { port: 3180 }, metrics: { address: '127.0.0.9', port: 9500 } }));
    const read = readOperatorConfig(file);
    assert.deepEqual(
      [read.listenerPort, read.metricsAddress, read.metricsPort, read.pinDir],
      [3180, '127.0.0.9', 9500, OPERATOR_DEFAULTS.pinDir],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('connection limits: derived from the open-files limit unless set, and checked when set', () => {
  const derived = connectionLimits(validateConfig({}).config);
  assert.ok(derived.total >= 64 && derived.total <= 16384, JSON.stringify(derived));
  assert.deepEqual(connectionLimits(validateConfig({ connections: { total: 1000 } }).config), {
    total: 1000,
    perUser: 125,
  });
  assert.deepEqual(connectionLimits(validateConfig({ connections: { total: 1000, perUser: 10 } }).config), {
    total: 1000,
    perUser: 10,
  });
  assert.match(
    validateConfig({ connections: { total: 4 } }).errors.join('\n'),
    /connections\.total must be an integer from 16/,
  );
});
