import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Emulator } from './emulator.js';
import type { FaultSpec } from './faults.js';
import type { HostSettingsPatch } from './host-state.js';

const CONTROL_BODY_LIMIT = 64 * 1024 * 1024;

class ControlError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    req.on('data', (c: Buffer) => {
      length += c.length;
      if (length > CONTROL_BODY_LIMIT) {
        req.removeAllListeners('data');
        reject(new ControlError(413, `control request body over ${CONTROL_BODY_LIMIT} bytes`));
      } else chunks.push(c);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve({});
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(new ControlError(400, `control request body is not valid JSON: ${(err as Error).message}`));
      }
    });
    req.on('error', reject);
  });
}

async function dispatch(emu: Emulator, req: IncomingMessage, url: URL): Promise<unknown> {
  const route = `${req.method} ${url.pathname}`;
  const faultId = /^\/faults\/(\d+)$/.exec(url.pathname);
  switch (route) {
    case 'GET /state':
      return emu.state();
    case 'POST /configure':
      return emu.configure((await readJson(req)) as HostSettingsPatch);
    case 'POST /vm-model':
      return emu.applyVmModel(await readJson(req));
    case 'POST /key/reset':
      return emu.resetKey();
    case 'GET /faults':
      return emu.faults();
    case 'POST /faults':
      return { id: emu.setFault((await readJson(req)) as FaultSpec) };
    case 'DELETE /faults':
      emu.clearFaults();
      return { cleared: true };
    case 'GET /journal':
      return emu.journal(Number(url.searchParams.get('since') ?? 0) || 0);
    case 'DELETE /journal':
      emu.clearJournal();
      return { cleared: true };
  }
  if (faultId && req.method === 'DELETE') {
    emu.clearFaults(Number(faultId[1]));
    return { cleared: true };
  }
  throw new ControlError(404, `no control route ${route}; see docs/emulator.md`);
}

/** The test control API: the in-process Emulator methods over JSON/HTTP. */
export function createControlServer(emu: Emulator): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    res.on('error', () => {});
    const url = new URL(req.url ?? '/', 'http://control');
    dispatch(emu, req, url).then(
      (result) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(result ?? null));
      },
      (err: unknown) => {
        const status = err instanceof ControlError ? err.status : 400;
        res.writeHead(status, { 'content-type': 'application/json', connection: 'close' });
        res.end(JSON.stringify({ error: (err as Error)?.message ?? String(err) }));
      },
    );
  }).on('clientError', (_e, socket) => socket.destroy());
}
