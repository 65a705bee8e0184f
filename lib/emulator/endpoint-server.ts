import { Buffer } from 'node:buffer';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Endpoint } from '../keykeeper/index.js';
import { isSignatureExempt, rfc1123, splitTarget } from '../signing/index.js';
import type { Fault } from './faults.js';
import type { HostCore } from './host-core.js';
import { headerPairs, type JournalRecord, type SignatureVerdict } from './journal.js';
import { json, parseQuery, type Reply, type RouteRequest } from './reply.js';
import { verifyRequest } from './verify.js';
import { isSecureChannelHandshake } from './wireserver-routes.js';

/** The host buffers signed bodies to verify them; exempt uploads are only counted. */
const SIGNED_BODY_LIMIT = 1024 * 1024;
const EXEMPT_BODY_LIMIT = 100 * 1024 * 1024;
const MALFORMED_JSON = '{"authorizationScheme": "Azure-HMAC-SHA256", "keyGuid": "';

type Route = (req: RouteRequest) => Reply;

function readBody(
  req: IncomingMessage,
  limit: number,
  keep: boolean,
): Promise<{ body: Buffer; length: number } | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > limit) {
        req.removeAllListeners('data');
        req.pause();
        resolve(null);
        return;
      }
      if (keep) chunks.push(chunk);
    });
    req.on('end', () => resolve({ body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), length }));
    req.on('error', () => resolve(null));
  });
}

function send(core: HostCore, res: ServerResponse, entry: JournalRecord, reply: Reply, close = false): void {
  if (res.headersSent || res.destroyed) return;
  const date = rfc1123(core.hostDate());
  const headers: Record<string, string> = { ...reply.headers, date, 'x-ms-azure-host-date': date };
  if (close) headers.connection = 'close';
  // An explicit length keeps responses un-chunked (what the real host sends).
  headers['content-length'] = String(reply.body === undefined ? 0 : Buffer.byteLength(reply.body));
  entry.status = reply.status;
  res.writeHead(reply.status, headers);
  res.end(reply.body);
}

function faultReply(f: Fault): Reply | null {
  if (f.kind === 'status') return json(f.status ?? 503, { error: `emulated fault ${f.id}` });
  if (f.kind === 'malformed-json')
    return { status: 200, headers: { 'content-type': 'application/json' }, body: MALFORMED_JSON };
  if (f.kind === 'body') {
    return {
      status: f.status ?? 200,
      headers: { 'content-type': f.contentType ?? 'application/json' },
      body: f.body ?? '',
    };
  }
  return null;
}

/** One metadata endpoint: journal, verify, fault injection, enforcement, then the route. */
export function createEndpointServer(
  core: HostCore,
  endpoint: Endpoint,
  route: Route,
  timers: Set<NodeJS.Timeout>,
): Server {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const headers = headerPairs(req.rawHeaders);
    const method = req.method ?? 'GET';
    const rawTarget = req.url ?? '/';
    const { rawPath, rawQuery } = splitTarget(rawTarget);
    const exempt = isSignatureExempt(method, rawTarget);
    const entry = core.journal.add({
      timeMs: Date.now(),
      endpoint,
      method,
      rawTarget,
      headers,
      peer: { address: req.socket.remoteAddress ?? '', port: req.socket.remotePort ?? 0 },
      signature: 'missing',
      status: null,
      bodyLength: 0,
    });
    const read = await readBody(req, exempt ? EXEMPT_BODY_LIMIT : SIGNED_BODY_LIMIT, !exempt);
    if (!read) {
      send(core, res, entry, json(413, { error: 'request body too large' }), true);
      return;
    }
    entry.bodyLength = read.length;
    const verdict: SignatureVerdict =
      exempt || (endpoint === 'wireserver' && isSecureChannelHandshake(method, rawPath))
        ? 'exempt'
        : verifyRequest(core.key, method, rawTarget, headers, read.body);
    entry.signature = verdict;

    const fault = core.faults.take(endpoint, method, rawTarget);
    if (fault) {
      entry.fault = `${fault.kind}#${fault.id}`;
      if (fault.kind === 'reset') return void req.socket.destroy();
      if (fault.kind === 'timeout') return; // left hanging until the client gives up or the emulator closes
      if (fault.kind === 'delay') {
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            timers.delete(t);
            resolve();
          }, fault.delayMs ?? 1000);
          timers.add(t);
        });
      } else {
        send(core, res, entry, faultReply(fault)!);
        return;
      }
    }
    if ((verdict === 'missing' || verdict === 'invalid') && core.mode(endpoint) === 'enforce') {
      send(core, res, entry, json(401, { error: `${endpoint} is in Enforce mode: signature ${verdict}` }));
      return;
    }
    const routeReq: RouteRequest = {
      method,
      rawTarget,
      rawPath,
      rawQuery,
      query: parseQuery(rawQuery),
      headers,
      body: read.body,
      host: core,
      signature: verdict,
    };
    send(core, res, entry, route(routeReq));
  };

  const server = createServer({ requireHostHeader: false }, (req, res) => {
    res.on('error', () => {});
    handle(req, res).catch((err: unknown) => {
      // Nothing a client sends may take the host down: answer 500 and keep serving.
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'content-type': 'application/json', connection: 'close' });
        res.end(JSON.stringify({ error: `emulator error: ${(err as Error)?.message ?? String(err)}` }));
      }
    });
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });
  return server;
}
