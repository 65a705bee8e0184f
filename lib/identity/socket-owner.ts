import { readFileSync } from 'node:fs';

function hexPortV4(address: string, port: number): string | null {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) return null;
  // /proc/net/tcp prints the address as a host-order u32 (little-endian on every supported CPU).
  const hex = parts
    .reverse()
    .map((n) => n.toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();
  return hex + ':' + port.toString(16).padStart(4, '0').toUpperCase();
}

/**
 * The uid that owns the client end of a direct (unredirected) TCP connection to the agent, read from
 * /proc/net/tcp: used only for the root-only local status path, where no kernel connect record
 * exists. Null when the entry is not found (fail closed).
 */
export function loopbackPeerUid(
  peer: { address: string; port: number },
  local: { address: string; port: number },
  procNetTcp = '/proc/net/tcp',
): number | null {
  const want = hexPortV4(peer.address, peer.port);
  const rem = hexPortV4(local.address, local.port);
  if (want === null || rem === null) return null;
  let text: string;
  try {
    text = readFileSync(procNetTcp, 'latin1');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[1] === want && f[2] === rem) {
      const uid = Number(f[7]);
      return Number.isInteger(uid) ? uid : null;
    }
  }
  return null;
}
