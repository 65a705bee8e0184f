import type { HostCore } from './host-core.js';

/** Outcome of applying a VM model: the notes the host logged (e.g. an ignored keyIncarnationId). */
export interface VmModelResult {
  notes: string[];
}

/** Applies a VM model (placeholder until issue 9 lands). */
export function applyVmModel(_core: HostCore, _doc: unknown, _profilesDir?: string): VmModelResult {
  throw new Error('VM model support is not implemented yet');
}
