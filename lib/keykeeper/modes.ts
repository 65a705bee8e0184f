import type { SecureChannelStatus } from './status-parse.js';
import type { Endpoint, Mode } from './types.js';

/** What a valid status means for the agent: modes, rules and the reported state string. */
export interface DerivedState {
  modes: Record<Endpoint, Mode>;
  rules: Partial<Record<Endpoint, unknown>>;
  ruleIds: Record<Endpoint, string | null>;
  secureChannelState: string;
  enabled: boolean;
}

const ALL_DISABLED: Record<Endpoint, Mode> = { imds: 'disabled', wireserver: 'disabled', hostga: 'disabled' };

function itemMode(item: Record<string, unknown> | undefined): Mode {
  const m = typeof item?.mode === 'string' ? item.mode.toLowerCase() : '';
  return m === 'audit' || m === 'enforce' ? m : 'disabled';
}

const cap = (m: Mode): string => m[0]!.toUpperCase() + m.slice(1);

function v1Modes(state: string): Record<Endpoint, Mode> {
  if (state === 'wireserverandimds') return { imds: 'enforce', wireserver: 'enforce', hostga: 'enforce' };
  if (state === 'wireserver') return { imds: 'audit', wireserver: 'enforce', hostga: 'enforce' };
  if (state === 'audit') return { imds: 'audit', wireserver: 'audit', hostga: 'audit' };
  return { ...ALL_DISABLED };
}

/**
 * Derives per-endpoint modes (spec section 2). HostGAPlugin follows WireServer's mode; its rules are
 * the host's `hostga` item when sent, else WireServer's (it "uses the WireServer mode and rules").
 */
export function deriveState(s: SecureChannelStatus): DerivedState {
  const items = s.authorizationRules ?? {};
  const rules: Partial<Record<Endpoint, unknown>> = {};
  if (items.imds) rules.imds = items.imds;
  if (items.wireserver) rules.wireserver = items.wireserver;
  const hostgaItem = items.hostga ?? items.wireserver;
  if (hostgaItem) rules.hostga = hostgaItem;
  const id = (ep: Endpoint) => {
    const item = rules[ep] as Record<string, unknown> | undefined;
    return typeof item?.id === 'string' ? item.id : null;
  };
  const ruleIds = { imds: id('imds'), wireserver: id('wireserver'), hostga: id('hostga') };

  if (s.version === '1.0') {
    const modes = v1Modes(s.secureChannelState!);
    return {
      modes,
      rules,
      ruleIds,
      secureChannelState: s.secureChannelState!,
      enabled: s.secureChannelState !== 'disabled',
    };
  }
  if (!s.secureChannelEnabled) {
    return { modes: { ...ALL_DISABLED }, rules, ruleIds, secureChannelState: 'disabled', enabled: false };
  }
  const ws = itemMode(items.wireserver);
  const modes: Record<Endpoint, Mode> = { imds: itemMode(items.imds), wireserver: ws, hostga: ws };
  // Two spaces before IMDS: existing tooling compares this string literally.
  const state = `WireServer ${cap(modes.wireserver)} -  IMDS ${cap(modes.imds)} - HostGA ${cap(modes.hostga)}`;
  return { modes, rules, ruleIds, secureChannelState: state, enabled: true };
}

/** True when at least one endpoint is intercepted, i.e. the agent needs a key. */
export function needsKey(modes: Record<Endpoint, Mode>): boolean {
  return modes.imds !== 'disabled' || modes.wireserver !== 'disabled' || modes.hostga !== 'disabled';
}

/**
 * False until the keeper has had one good status: before that the modes are not known (the initial
 * snapshot, and a failed first poll, say `disabled` for every endpoint without the host having said
 * so), and nothing may be decided from them: no redirect removed, no policy handed to the workers.
 */
export function statusKnown(s: { secureChannelState: string }): boolean {
  return s.secureChannelState !== 'unknown';
}
