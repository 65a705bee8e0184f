// An agent config for tests that run the agent in this process against the in-process host
// emulator: no eBPF ("redirect": false), the emulator's endpoints, folders under `dir`, an
// ephemeral listener port. `extra` overrides or adds keys.
import assert from 'node:assert/strict';
import path from 'node:path';
import { type AgentConfig, validateConfig } from '../../lib/agent/index.js';
import type { Emulator } from '../../lib/emulator/index.js';

export function inProcessAgentConfig(
  emulator: Emulator,
  dir: string,
  extra: Record<string, unknown> = {},
): AgentConfig {
  const a = emulator.addresses;
  const { config, errors } = validateConfig({
    logFolder: path.join(dir, 'log'),
    latchKeyFolder: path.join(dir, 'keys'),
    redirect: false,
    pinDir: null,
    endpoints: {
      imds: { address: a.imds.host, port: a.imds.port },
      wireserver: { address: a.wireserver.host, port: a.wireserver.port },
      hostga: { address: a.hostga.host, port: a.hostga.port },
    },
    listener: { address: '127.0.0.1', port: 0 },
    metrics: null,
    drainSeconds: 1,
    ...extra,
  });
  assert.deepEqual(errors, []);
  return config;
}
