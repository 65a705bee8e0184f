/**
 * Acceptance scenario 27, run inside a sealed network namespace (readiness.test.ts enters it with
 * nsenter): `gpa --status --wait 10` while the host withholds the key, then after it grants it;
 * DNS over UDP and TCP to 168.63.129.16:53 from the redirected cgroup. Prints one JSON line.
 * Never run it outside such a namespace: it binds the real WireServer address.
 */
import { execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import path from 'node:path';
import { NOBODY, repoRoot, startStack, unsignedAt } from './harness.js';

const CLI = path.join(repoRoot, 'bin', 'gpa.mjs');
const out: Record<string, unknown> = {};

/** Runs the CLI without blocking this process (the emulator lives here and must keep answering). */
function gpa(args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    c.stdout.on('data', (d) => {
      stdout += d;
    });
    c.on('close', (code) => resolve({ code, stdout }));
  });
}

/** A stand-in DNS server on 168.63.129.16:53 (UDP and TCP) that says which address answered. */
async function dnsServers(): Promise<{ close: () => void }> {
  const udp = dgram.createSocket('udp4');
  udp.on('message', (m, peer) => {
    udp.send(Buffer.concat([m.subarray(0, 12), Buffer.from('udp-answer')]), peer.port, peer.address);
  });
  await new Promise<void>((r) => udp.bind(53, '168.63.129.16', r));
  const tcp = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', (d) => {
      const body = Buffer.concat([d.subarray(2, 14), Buffer.from(`tcp-answer ${s.localAddress}:${s.localPort}`)]);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(body.length);
      s.end(Buffer.concat([len, body]));
    });
  });
  await new Promise<void>((r) => tcp.listen(53, '168.63.129.16', r));
  return {
    close: () => {
      udp.close();
      tcp.close();
    },
  };
}

let faultId = 0;
const s = await startStack({
  realAddresses: true,
  settings: { enabled: true, modes: { imds: 'enforce', wireserver: 'enforce' } },
  beforeAgent: (e) => {
    faultId = e.setFault({ endpoint: 'wireserver', path: '/secure-channel/key', method: 'POST', kind: 'status' });
  },
});
const dns = await dnsServers();
try {
  const status = ['--status', '--wait', '10', '--host', '127.0.0.1', '--port', String(s.agentPort)];
  out.withheld = await gpa(status);
  out.keyRequestsRefused = s.emulator
    .journal()
    .filter((e) => e.rawTarget === '/secure-channel/key' && e.status === 503).length;
  s.emulator.clearFaults(faultId);
  out.granted = await gpa(status);
  await s.waitForLog(/redirecting wireserver/);
  const attached = execFileSync('bpftool', ['cgroup', 'show', s.cgroup.path], { encoding: 'utf8' });
  out.attached = ['connect4', 'connect6', 'sock_ops'].filter((p) => attached.includes(p));
  const probe = path.join(repoRoot, 'test', 'e2e', 'fixtures', 'dns_probe.mjs');
  for (const [who, as] of [
    ['root', {}],
    ['nobody', { uid: NOBODY, gid: 65534 }],
  ] as const) {
    const r = await s.run(process.execPath, [probe, '168.63.129.16'], as);
    out[`dns_${who}`] = JSON.parse(r.stdout.trim() || '{}');
  }
  // The redirect is live for WireServer on port 80 at the same time: proves the probe ran under it.
  out.wireserverRoot = (await s.curl('http://168.63.129.16/machine/?comp=goalstate')).status;
  const j = s.emulator.journal().filter((e) => !e.rawTarget.startsWith('/secure-channel'));
  out.unsigned = [...unsignedAt(j, 'imds'), ...unsignedAt(j, 'wireserver'), ...unsignedAt(j, 'hostga')].length;
  out.stop = (await s.stop()).code;
} catch (err) {
  out.error = String((err as Error).stack ?? err);
  out.agentLog = s.stderr();
} finally {
  dns.close();
  await s.cleanup();
}
process.stdout.write(`${JSON.stringify(out)}\n`);
