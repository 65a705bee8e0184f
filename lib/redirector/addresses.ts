/** Address normalisation shared by rules and lookups. */
import { BlockList, isIP } from 'node:net';
import { RedirectorError } from './errors.js';

const V4_MAPPED = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/** `::ffff:127.0.0.1` -> `127.0.0.1`; drops an IPv6 zone (`fe80::1%lo`). Hot path: cheap checks first. */
export function normaliseAddress(address: string): string {
  if (address.charCodeAt(0) === 58 /* ':' */ && address.length > 7) {
    const m = V4_MAPPED.exec(address);
    if (m) return m[1]!;
  }
  const zone = address.indexOf('%');
  return zone < 0 ? address : address.slice(0, zone);
}

/** Validates an address literal for a rule; returns its normalised form and family. */
export function ruleAddress(what: string, address: string): { address: string; family: 4 | 6 } {
  const a = normaliseAddress(String(address));
  const family = isIP(a);
  if (family !== 4 && family !== 6) {
    throw new RedirectorError('setRule', `${what} '${address}' is not an IPv4 or IPv6 literal (e.g. 169.254.169.254)`);
  }
  return { address: a, family };
}

export function rulePort(what: string, port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RedirectorError('setRule', `${what} ${port} is not a TCP port (1..65535)`);
  }
  return port;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * The proxy end of a rule must be loopback: sockops only looks for a hand-off record on sockets whose
 * remote end is loopback (every other TCP connect on the machine leaves at once), and the agent's
 * listener never listens beyond the VM anyway.
 */
export function requireLoopbackProxy(proxy: { address: string; family: 4 | 6 }, given: string): void {
  if (!LOOPBACK.check(proxy.address, proxy.family === 4 ? 'ipv4' : 'ipv6')) {
    throw new RedirectorError(
      'setRule',
      `proxy '${given}' is not a loopback address: redirect to the agent's listener on 127.0.0.0/8 or ::1`,
    );
  }
}
