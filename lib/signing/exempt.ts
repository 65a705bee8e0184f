/**
 * The two upload targets the host accepts unsigned (whole request target, case-insensitive):
 * `PUT /vmAgentLog` and `POST /machine/?comp=telemetrydata`.
 */
export function isSignatureExempt(method: string, rawTarget: string): boolean {
  const m = method.toUpperCase();
  if (m === 'PUT') return rawTarget.toLowerCase() === '/vmagentlog';
  if (m === 'POST') return rawTarget.toLowerCase() === '/machine/?comp=telemetrydata';
  return false;
}
