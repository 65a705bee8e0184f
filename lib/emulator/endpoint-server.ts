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

/** The host's Date header, formatted once per second of host time (RFC 1123 has no finer field). */
class HostDateText {
  private second = Number.NaN;
  private text = '';
  of(core: HostCore): string {
    const ms = core.hostDate().getTime();
    const second = Math.floor(ms / 1000);
    if (second !== this.second) {
      this.second = second;
      this.text = rfc1123(new Date(ms));
    }
    return this.text;
  }
}

function send(
  core: HostCore,
  dates: HostDateText,
  res: ServerResponse,
  entry: JournalRecord,
  reply: Reply,
  close = false,
): void {
  if (res.headersSent || res.destroyed) return;
  const date = dates.of(core);
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

/**
 * True when a request has neither a Content-Length nor a Transfer-Encoding, so no body (HTTP/1.1
 * framing). Such requests are answered in the same tick, without waiting for the body stream's end;
 * the rest (`Content-Length: 0` too) once their body is read.
 */
function isBodiless(headers: [string, string][]): boolean {
  for (const [n] of headers) {
    if (n.length === 14) {
      if (n.toLowerCase() === 'content-length') return false;
    } else if (n.length === 17 && n.toLowerCase() === 'transfer-encoding') return false;
  }
  return true;
}

const NO_BODY = Buffer.alloc(0);

/** What the handler took from a request's line. */
interface RequestParts {
  method: string;
  rawTarget: string;
  rawPath: string;
  rawQuery: string;
  exempt: boolean;
}

/** One metadata endpoint: journal, verify, fault injection, enforcement, then the route. */
export function createEndpointServer(
  core: HostCore,
  endpoint: Endpoint,
  route: Route,
  timers: Set<NodeJS.Timeout>,
): Server {
  const dates = new HostDateText();

  /** After the body: verify, faults, enforcement, the route. A promise only when a fault delays it. */
  const answer = (
    req: IncomingMessage,
    res: ServerResponse,
    entry: JournalRecord,
    parts: RequestParts,
    body: Buffer,
  ): Promise<void> | undefined => {
    const { method, rawTarget, rawPath, rawQuery } = parts;
    const headers = entry.headers;
    const verdict: SignatureVerdict =
      parts.exempt || (endpoint === 'wireserver' && isSecureChannelHandshake(method, rawPath))
        ? 'exempt'
        : verifyRequest(core.key, method, rawPath, rawQuery, headers, body);
    entry.signature = verdict;

    const fault = core.faults.take(endpoint, method, rawTarget);
    if (fault) {
      entry.fault = `${fault.kind}#${fault.id}`;
      if (fault.kind === 'reset') return void req.socket.destroy();
      if (fault.kind === 'timeout') return; // left hanging until the client gives up or the emulator closes
      if (fault.kind === 'delay') {
        return new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            timers.delete(t);
            resolve();
          }, fault.delayMs ?? 1000);
          timers.add(t);
        }).then(() => respond(res, entry, parts, body, verdict));
      }
      send(core, dates, res, entry, faultReply(fault)!);
      return;
    }
    respond(res, entry, parts, body, verdict);
  };

  const respond = (
    res: ServerResponse,
    entry: JournalRecord,
    parts: RequestParts,
    body: Buffer,
    verdict: SignatureVerdict,
  ): void => {
    if ((verdict === 'missing' || verdict === 'invalid') && core.mode(endpoint) === 'enforce') {
      send(core, dates, res, entry, json(401, { error: `${endpoint} is in Enforce mode: signature ${verdict}` }));
      return;
    }
    const routeReq: RouteRequest = {
      method: parts.method,
      rawTarget: parts.rawTarget,
      rawPath: parts.rawPath,
      rawQuery: parts.rawQuery,
      query: parseQuery(parts.rawQuery),
      headers: entry.headers,
      body,
      host: core,
      signature: verdict,
    };
    send(core, dates, res, entry, route(routeReq));
  };

  const handle = (req: IncomingMessage, res: ServerResponse): Promise<void> | undefined => {
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
    const parts: RequestParts = { method, rawTarget, rawPath, rawQuery, exempt };
    // Most metadata requests are bodiless GETs: answered now (Node discards the empty body stream).
    if (isBodiless(headers)) return answer(req, res, entry, parts, NO_BODY);
    return readBody(req, exempt ? EXEMPT_BODY_LIMIT : SIGNED_BODY_LIMIT, !exempt).then((read) => {
      if (!read) {
        send(core, dates, res, entry, json(413, { error: 'request body too large' }), true);
        return;
      }
      entry.bodyLength = read.length;
      return answer(req, res, entry, parts, read.body);
    });
  };

  const failed = (res: ServerResponse, err: unknown): void => {
    // Nothing a client sends may take the host down: answer 500 and keep serving.
    if (!res.headersSent && !res.destroyed) {
      res.writeHead(500, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify({ error: `emulator error: ${(err as Error)?.message ?? String(err)}` }));
    }
  };

  const server = createServer({ requireHostHeader: false }, (req, res) => {
    res.on('error', () => {});
    try {
      handle(req, res)?.catch((err: unknown) => failed(res, err));
    } catch (err) {
      failed(res, err);
    }
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });
  return server;
}
