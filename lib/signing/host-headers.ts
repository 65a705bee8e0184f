/** Header names the agent owns on every request to the host (spec sections 2 and 4). */
export const HOST_CLAIMS_HEADER = 'x-ms-azure-host-claims';
export const HOST_DATE_HEADER = 'x-ms-azure-host-date';

/** The exact claims values the host expects (note the spaces: the host compares them literally). */
export const ROOT_CLAIMS = '{ "isRoot": "true"}';
export const NON_ROOT_CLAIMS = '{ "isRoot": "false"}';

/** RFC 1123 date as the host writes it, e.g. `Wed, 23 Apr 2025 12:00:00 GMT`. */
export function rfc1123(date: Date): string {
  return date.toUTCString();
}

/** True for header names no client may supply (`x-ms-azure-host-*`); the agent strips them. */
export function isReservedHostHeader(name: string): boolean {
  return name.length >= 16 && name.slice(0, 16).toLowerCase() === 'x-ms-azure-host-';
}
