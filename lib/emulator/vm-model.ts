import type { Mode } from '../keykeeper/index.js';
import type { HostCore } from './host-core.js';
import type { HostSettingsPatch } from './host-state.js';
import { loadLinkedProfile } from './vm-profiles.js';

/** Outcome of applying a VM model: notes the host logged and whether the key was reset. */
export interface VmModelResult {
  notes: string[];
  keyReset: boolean;
  modes: { imds: Mode; wireserver: Mode };
  enabled: boolean;
}

const INLINE_MODES: Record<string, Mode> = { disabled: 'disabled', audit: 'audit', enforce: 'enforce' };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Finds `proxyAgentSettings` in a VM resource, a scale-set resource, or takes the object itself. */
export function findProxyAgentSettings(doc: unknown): Record<string, unknown> {
  if (!isObject(doc)) throw new Error('VM model must be a JSON object (a VM/scale-set resource or proxyAgentSettings)');
  const props = isObject(doc.properties) ? doc.properties : undefined;
  const vmssProfile = isObject(props?.virtualMachineProfile) ? props.virtualMachineProfile : undefined;
  const security = props?.securityProfile ?? vmssProfile?.securityProfile;
  if (props !== undefined) {
    if (!isObject(security) || !isObject(security.proxyAgentSettings)) {
      throw new Error('properties.securityProfile.proxyAgentSettings is missing from the VM model');
    }
    return security.proxyAgentSettings;
  }
  if (isObject(doc.proxyAgentSettings)) return doc.proxyAgentSettings;
  return doc;
}

interface EndpointPlan {
  mode: Mode;
  item: Record<string, unknown> | null;
}

function endpointPlan(
  pas: Record<string, unknown>,
  field: 'wireServer' | 'imds',
  enabled: boolean,
  profilesDir: string | undefined,
  notes: string[],
): EndpointPlan {
  const where = `proxyAgentSettings.${field}`;
  const s = pas[field];
  if (s === undefined || s === null) {
    // The platform's observe-only default when the feature is on but the endpoint is not configured.
    if (enabled) notes.push(`${where} not set: using mode Audit`);
    return { mode: enabled ? 'audit' : 'disabled', item: null };
  }
  if (!isObject(s)) throw new Error(`${where} must be an object`);
  const hasMode = s.mode !== undefined && s.mode !== null;
  const ref = s.inVMAccessControlProfileReferenceId;
  const hasRef = ref !== undefined && ref !== null;
  if (hasMode && hasRef) {
    throw new Error(`${where}: 'mode' and 'inVMAccessControlProfileReferenceId' cannot both be specified; choose one`);
  }
  if (hasRef) {
    if (typeof ref !== 'string') throw new Error(`${where}.inVMAccessControlProfileReferenceId must be a string`);
    const item = loadLinkedProfile(ref, `${where}.inVMAccessControlProfileReferenceId`, field, profilesDir);
    return { mode: item.mode as Mode, item };
  }
  if (!hasMode) return { mode: enabled ? 'audit' : 'disabled', item: null };
  const mode = typeof s.mode === 'string' ? INLINE_MODES[s.mode.toLowerCase()] : undefined;
  if (!mode) throw new Error(`${where}.mode must be Disabled, Audit or Enforce (got ${JSON.stringify(s.mode)})`);
  return { mode, item: null };
}

/**
 * Turns a VM model into the host's secure-channel status, the way a model update would: validated
 * completely first, then applied at once (a bad model changes nothing).
 */
export function applyVmModel(core: HostCore, doc: unknown, profilesDir?: string): VmModelResult {
  const pas = findProxyAgentSettings(doc);
  const notes: string[] = [];
  if (pas.enabled !== undefined && typeof pas.enabled !== 'boolean') {
    throw new Error('proxyAgentSettings.enabled must be true or false');
  }
  const enabled = pas.enabled === true;
  const ws = endpointPlan(pas, 'wireServer', enabled, profilesDir, notes);
  const imds = endpointPlan(pas, 'imds', enabled, profilesDir, notes);
  const inc = pas.keyIncarnationId;
  if (inc !== undefined && inc !== null && !(Number.isSafeInteger(inc) && (inc as number) >= 0)) {
    throw new Error('proxyAgentSettings.keyIncarnationId must be a non-negative integer');
  }

  const patch: HostSettingsPatch = {
    version: '2.0',
    enabled,
    rules: { imds: imds.item, wireserver: ws.item, hostga: null },
    modes: { imds: imds.mode, wireserver: ws.mode },
  };
  core.configure(patch);
  let keyReset = false;
  if (typeof inc === 'number') {
    if (inc > core.incarnationId) {
      core.resetKey(inc);
      keyReset = true;
      notes.push(`keyIncarnationId ${inc}: key reset (new GUID ${core.key?.guid})`);
    } else {
      notes.push(
        `keyIncarnationId ${inc} ignored: it must be larger than the current ${core.incarnationId} to reset the key`,
      );
    }
  }
  for (const n of notes) core.note(n);
  return { notes, keyReset, modes: { imds: imds.mode, wireserver: ws.mode }, enabled };
}
