import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Emulator } from '../../lib/emulator/index.js';
import { createKeyKeeper, type KeyKeeper, type KeyKeeperOptions } from '../../lib/keykeeper/index.js';

/** A scratch root for key folders (the keeper creates `<root>/keys` itself, 0700). */
export function scratch(): { root: string; keys: string; cleanup: () => void } {
  const root = mkdtempSync(path.join(tmpdir(), 'gpa-keykeeper-'));
  return { root, keys: path.join(root, 'keys'), cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export function keeperFor(emu: Emulator, keys: string, extra: Partial<KeyKeeperOptions> = {}): KeyKeeper {
  return createKeyKeeper({
    wireserver: emu.addresses.wireserver,
    keyFolder: keys,
    requestTimeoutMs: 300,
    pollIntervalMs: 60_000,
    fastPollIntervalMs: 10,
    ...extra,
  });
}
