import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const REFERENCE_ID =
  /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/galleries\/([^/]+)\/inVMAccessControlProfiles\/([^/]+)\/versions\/([^/]+)$/i;
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const ID_SHAPE =
  '/subscriptions/{id}/resourceGroups/{rg}/providers/Microsoft.Compute/galleries/{gallery}/inVMAccessControlProfiles/{profile}/versions/{version}';
const MAX_PROFILE_BYTES = 4 * 1024 * 1024;

/** Parts of a linked-profile reference ID; throws naming the field when malformed. */
export function parseProfileReference(
  id: string,
  field: string,
): { gallery: string; profile: string; version: string } {
  const m = REFERENCE_ID.exec(id);
  // Every segment becomes a path component: no traversal, no odd characters.
  if (!m || m.slice(1).some((seg) => !SAFE_NAME.test(seg) || seg.includes('..'))) {
    throw new Error(`${field}: ${JSON.stringify(id.slice(0, 300))} is not a valid resource ID; expected ${ID_SHAPE}`);
  }
  return { gallery: m[3]!, profile: m[4]!, version: m[5]! };
}

function lowerEnum(v: unknown, allowed: string[], field: string): string {
  const s = typeof v === 'string' ? v.toLowerCase() : undefined;
  if (!s || !allowed.includes(s))
    throw new Error(`${field} must be one of ${allowed.join(', ')} (got ${JSON.stringify(v)})`);
  return s;
}

/**
 * Loads `<profilesDir>/<gallery>/<profile>/<version>.json` and returns the authorizationRules item
 * the host would send: `{ defaultAccess, mode, id, rules }`. Accepts the Azure resource shape
 * (`{ properties: {...} }`) or the bare properties.
 */
export function loadLinkedProfile(
  id: string,
  field: string,
  endpoint: 'wireServer' | 'imds',
  profilesDir: string | undefined,
): Record<string, unknown> {
  const ref = parseProfileReference(id, field);
  if (!profilesDir) throw new Error(`${field}: no profiles folder configured (start the emulator with --profiles DIR)`);
  const file = path.join(profilesDir, ref.gallery, ref.profile, `${ref.version}.json`);
  let text: string;
  try {
    if (statSync(file).size > MAX_PROFILE_BYTES) throw new Error(`larger than ${MAX_PROFILE_BYTES} bytes`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(
      `${field}: inVMAccessControlProfile ${ref.profile} version ${ref.version} not found in gallery ${ref.gallery} (${file}: ${(err as Error).message})`,
    );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`${field}: profile ${file} is not valid JSON (${(err as Error).message})`);
  }
  const root = doc as Record<string, unknown> | null;
  const props = (typeof root?.properties === 'object' && root.properties !== null ? root.properties : root) as Record<
    string,
    unknown
  > | null;
  if (typeof props !== 'object' || props === null || Array.isArray(props))
    throw new Error(`${field}: profile ${file} must be a JSON object`);
  const target = props.applicableHostEndpoint;
  if (target !== undefined && String(target).toLowerCase() !== endpoint.toLowerCase()) {
    throw new Error(`${field}: profile ${file} applies to ${String(target)}, not ${endpoint}`);
  }
  const mode = lowerEnum(props.mode, ['disabled', 'audit', 'enforce'], `${file}: mode`);
  const defaultAccess = lowerEnum(props.defaultAccess, ['allow', 'deny'], `${file}: defaultAccess`);
  const rules = props.rules;
  if (rules !== undefined && (typeof rules !== 'object' || rules === null || Array.isArray(rules))) {
    throw new Error(`${file}: rules must be an object`);
  }
  const item: Record<string, unknown> = { defaultAccess, mode, id };
  if (rules !== undefined) item.rules = rules;
  return item;
}
