// A stand-in metadata upstream used only while lib/emulator is not available (development of the
// harness itself). Results produced with it are marked as such; the real bench uses the emulator.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const INSTANCE = JSON.stringify({
  compute: {
    azEnvironment: 'AzurePublicCloud',
    location: 'westeurope',
    name: 'bench-vm',
    osType: 'Linux',
    vmId: '00000000-0000-4000-8000-000000000000',
    vmSize: 'Standard_D2s_v5',
    tags: '',
  },
  network: { interface: [{ ipv4: { ipAddress: [{ privateIpAddress: '10.0.0.4', publicIpAddress: '' }] } }] },
});
const TOKEN = JSON.stringify({
  access_token: `eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.${'x'.repeat(900)}.sig`,
  expires_in: '86399',
  resource: 'https://management.azure.com/',
  token_type: 'Bearer',
});

export function startBuiltinUpstream(
  host: string,
  port: number,
): Promise<{ host: string; port: number; close(): void }> {
  const server = http.createServer((req, res) => {
    if (String(req.headers.metadata).toLowerCase() !== 'true') {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"Bad request"}');
      return;
    }
    const body = req.url?.startsWith('/metadata/identity/oauth2/token') ? TOKEN : INSTANCE;
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(body);
  });
  return new Promise((resolve) => {
    server.listen(port, host, () => {
      const a = server.address() as AddressInfo;
      resolve({ host: a.address, port: a.port, close: () => server.close() });
    });
  });
}
