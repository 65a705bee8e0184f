import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Emulator } from './emulator.js';

/**
 * Applies a VM model file now and again whenever it changes (or `reload()` is called, e.g. on SIGHUP).
 * A bad model is reported and changes nothing: the host keeps serving the last good one.
 */
export function watchVmModelFile(
  emu: Emulator,
  file: string,
  log: (msg: string) => void,
  pollMs = 500,
): { reload: () => boolean; close: () => void } {
  const reload = (): boolean => {
    try {
      const result = emu.applyVmModel(JSON.parse(readFileSync(file, 'utf8')));
      log(
        `vm model ${file} applied: enabled=${result.enabled} wireServer=${result.modes.wireserver} imds=${result.modes.imds}`,
      );
      return true;
    } catch (err) {
      log(`vm model ${file} rejected, keeping the previous model: ${(err as Error).message}`);
      return false;
    }
  };
  const onChange = (cur: { mtimeMs: number; size: number }, prev: { mtimeMs: number; size: number }) => {
    if (cur.mtimeMs !== prev.mtimeMs || cur.size !== prev.size) reload();
  };
  watchFile(file, { interval: pollMs, persistent: false }, onChange);
  return { reload, close: () => unwatchFile(file, onChange) };
}
