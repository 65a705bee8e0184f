import { KeyKeeper, type KeyKeeperOptions, type KeySnapshot, statusKnown } from '../keykeeper/index.js';

/**
 * A key keeper that also reports every finished poll, not only the ones that changed the snapshot:
 * provisioning readiness is refreshed by each successful poll (a `/provision` time tick compares
 * with it) and the host clock offset may move without any published change. The poll itself
 * (serialised, never throwing) is the keeper's; this only observes its result.
 */
export class ObservedKeyKeeper extends KeyKeeper {
  constructor(
    opts: KeyKeeperOptions,
    private readonly afterPoll: (snapshot: KeySnapshot) => void,
  ) {
    super(opts);
  }

  override pollOnce(): Promise<KeySnapshot> {
    return super.pollOnce().then((s) => {
      try {
        this.afterPoll(s);
      } catch {
        // an observer must never break the poll loop
      }
      return s;
    });
  }
}

/** True when an endpoint's mode needs a key (anything but disabled). */
export function needsKey(s: KeySnapshot): boolean {
  return Object.values(s.modes).some((m) => m !== 'disabled');
}

/**
 * What one finished poll means for the `key` readiness flag:
 * - 'ready': the poll succeeded (key latched, or the channel is disabled and needs none);
 * - 'dropped': a key was held before, none is now, and a mode still needs one;
 * - 'waiting': the keeper never had a good answer yet (message: its status line);
 * - 'keep': a failed poll after a good one: the last good key and rules stay in use.
 */
export function keyReadiness(prev: KeySnapshot | null, s: KeySnapshot): 'ready' | 'dropped' | 'waiting' | 'keep' {
  if (prev?.key !== undefined && s.key === undefined && needsKey(s)) return 'dropped';
  if (s.health === 'ok') return 'ready';
  if (!statusKnown(s)) return 'waiting';
  return 'keep';
}
