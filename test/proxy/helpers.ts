import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import {
  type CallerClaims,
  type ConnectionLimits,
  type ConnOriginLike,
  DEFAULT_BODY_LIMITS,
  DEFAULT_HEAD_LIMITS,
  DEFAULT_TIMEOUTS,
  type Decision,
  nativeIoFor,
  type ProxyContext,
  ProxyListener,
  type ProxySnapshot,
  type RequestAuditRecord,
  type RequestDoneInfo,
} from '../../lib/proxy/index.js';
import { clientSocketIo, nativeHmac } from '../../lib/redirector/index.js';
import { SigningKey } from '../../lib/signing/index.js';

/**
 * Which client sockets the test proxies use: `native` (the addon's, the agent's default on Linux)
 * unless GPA_TEST_CLIENT_SOCKETS=node; scripts/run-tests.mjs runs the proxy tests both ways.
 */
export const CLIENT_SOCKETS: 'native' | 'node' = process.env.GPA_TEST_CLIENT_SOCKETS === 'node' ? 'node' : 'native';

export function testSocketIo() {
  if (CLIENT_SOCKETS === 'node') return null;
  const io = clientSocketIo();
  if (io === null && process.platform === 'linux') throw new Error('the addon has no client-socket I/O (rebuild it)');
  return io === null ? null : nativeIoFor(io);
}

/**
 * How the test proxies sign: with the addon's HMAC in the native run (as the agent does on Linux),
 * with node:crypto in the net.Socket run. Either way the test upstreams verify with node:crypto.
 */
export function testHmac() {
  if (CLIENT_SOCKETS === 'node') return null;
  const hmac = nativeHmac();
  if (hmac === null && process.platform === 'linux') throw new Error('the addon has no HMAC-SHA256 (rebuild it)');
  return hmac;
}

export const KEY_GUID = '11111111-2222-3333-4444-555555555555';

/** What the test upstream saw of one request. */
export interface Seen {
  method: string;
  url: string;
  rawHeaders: [string, string][];
  body: Buffer;
  remotePort: number;
}

/** A node:http upstream that records requests and answers via `respond`. */
export async function startUpstream(
  respond: (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void = (_q, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end('upstream-ok');
  },
): Promise<{ port: number; seen: Seen[]; sockets: () => number; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  let sockets = 0;
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const raw: [string, string][] = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2) raw.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
      const body = Buffer.concat(parts);
      seen.push({ method: req.method!, url: req.url!, rawHeaders: raw, body, remotePort: req.socket.remotePort! });
      respond(req, res, body);
    });
  });
  server.on('connection', () => sockets++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    sockets: () => sockets,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A raw upstream that writes literal bytes for each request it reads (for framing edge cases). */
export async function startRawUpstream(
  onConnection: (socket: net.Socket) => void,
): Promise<{ port: number; close: () => Promise<void> }> {
  const socks = new Set<net.Socket>();
  const server = net.createServer((s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => {});
    onConnection(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        server.close(() => r());
      }),
  };
}

export function claims(uid = 1000): CallerClaims {
  return {
    pid: process.pid,
    uid,
    gid: uid,
    userName: uid === 0 ? 'root' : 'tester',
    groups: [],
    exePath: process.execPath,
    processName: 'node',
    cmdline: 'node test',
    cgroupId: 1n,
  };
}

export function allowAll(req: {
  endpoint: 'imds' | 'wireserver' | 'hostga';
  method: string;
  rawTarget: string;
}): Decision {
  // As lib/policy decides it: the two uploads are exempt on WireServer and HostGAPlugin, never IMDS.
  const t = req.rawTarget.toLowerCase();
  const exempt =
    req.endpoint !== 'imds' &&
    ((req.method === 'PUT' && t === '/vmagentlog') || (req.method === 'POST' && t === '/machine/?comp=telemetrydata'));
  return {
    outcome: 'allow',
    forward: true,
    code: 'ALLOW_TEST',
    endpoint: req.endpoint,
    mode: 'enforce',
    ruleId: null,
    signatureExempt: exempt,
    policyVersion: 1,
  };
}

export interface TestProxy {
  port: number;
  listener: ProxyListener;
  audits: RequestAuditRecord[];
  done: RequestDoneInfo[];
  key: Buffer;
  close: () => Promise<void>;
}

/** A ProxyListener on an ephemeral loopback port whose every connection is "attributed" to IMDS (or `endpoint`). */
export async function startProxy(
  upstreamPort: number,
  opts: {
    /** The endpoint every connection is attributed to (default imds). */
    endpoint?: 'imds' | 'wireserver' | 'hostga';
    attributed?: boolean;
    uid?: number;
    decide?: ProxySnapshot['decide'];
    withKey?: boolean;
    timeouts?: Partial<typeof DEFAULT_TIMEOUTS>;
    peerUid?: number | null;
    /** The claims of each connection (default: a new object per connection, like an unshared resolver answer). */
    claims?: () => CallerClaims;
    /** The uid of each new connection (default: `uid` for all). */
    uidFor?: () => number;
    /** Connection limits of the listener (default: none). */
    limits?: ConnectionLimits;
  } = {},
): Promise<TestProxy> {
  const key = randomBytes(32);
  const audits: RequestAuditRecord[] = [];
  const done: RequestDoneInfo[] = [];
  const origin: ConnOriginLike = {
    pid: process.pid,
    tid: process.pid,
    uid: opts.uid ?? 1000,
    gid: opts.uid ?? 1000,
    comm: 'node',
    cgroupId: 1n,
    origDst: '127.254.169.254',
    origPort: 80,
    family: 4,
  };
  const snapshot: ProxySnapshot = {
    epoch: 1,
    decide: opts.decide ?? allowAll,
    key: opts.withKey === false ? null : { guid: KEY_GUID, signingKey: new SigningKey(key, testHmac()) },
    hostClockOffsetMs: 0,
    provision: {
      finishedAtNs: 1n,
      gaveUp: false,
      errorMessage: '',
      latched: true,
      ready: { redirector: true, key: true, listener: true },
    },
    aggregatedStatus: '{"status":"test"}',
  };
  const ctx: ProxyContext = {
    snapshot,
    routes: [
      {
        name: opts.endpoint ?? 'imds',
        address: '127.254.169.254',
        port: 80,
        upstream: { host: '127.0.0.1', port: upstreamPort },
      },
    ],
    lookup: () => {
      if (opts.attributed === false) return null;
      if (opts.uidFor === undefined) return origin;
      const uid = opts.uidFor();
      return { ...origin, uid, gid: uid };
    },
    claims: opts.claims ?? ((o: ConnOriginLike) => claims(opts.uidFor === undefined ? (opts.uid ?? 1000) : o.uid)),
    directPeerUid: () => (opts.peerUid === undefined ? 0 : opts.peerUid),
    audit: (r) => {
      audits.push(r);
      return 'written';
    },
    onRequestDone: (i) => done.push(i),
    headLimits: DEFAULT_HEAD_LIMITS,
    bodyLimits: DEFAULT_BODY_LIMITS,
    timeouts: { ...DEFAULT_TIMEOUTS, ...opts.timeouts },
    notifyKeyKeeper: null,
    draining: false,
  };
  const listener = new ProxyListener(ctx, { io: testSocketIo(), limits: opts.limits ?? null });
  const addr = await listener.listen({ host: '127.0.0.1', port: 0 });
  return { port: addr.port, listener, audits, done, key, close: () => listener.close(200) };
}

/**
 * Sends raw bytes (optionally split into pieces written separately) and collects everything the
 * server sends until it closes or `waitMs` passes.
 */
export function rawExchange(port: number, pieces: (string | Buffer)[], waitMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    const timer = setTimeout(() => finish(), waitMs);
    function finish() {
      clearTimeout(timer);
      s.destroy();
      resolve(Buffer.concat(got).toString('latin1'));
    }
    s.on('data', (c: Buffer) => got.push(c));
    s.on('close', finish);
    s.on('error', () => {});
    s.on('connect', async () => {
      for (const p of pieces) {
        if (s.destroyed) return;
        s.write(p);
        if (pieces.length > 1) await new Promise((r) => setImmediate(r));
      }
    });
  });
}

/** Splits `text` at random offsets into 1..n pieces. */
export function randomSplit(text: string | Buffer, rnd: () => number = Math.random): Buffer[] {
  const b = Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1');
  const out: Buffer[] = [];
  let i = 0;
  while (i < b.length) {
    const n = 1 + Math.floor(rnd() * Math.min(b.length - i, 16));
    out.push(b.subarray(i, i + n));
    i += n;
  }
  return out;
}

/** Status codes of every response head in a raw response stream, in order. */
export function statuses(raw: string): number[] {
  return [...raw.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

export function headerOf(raw: string, name: string): string | undefined {
  const m = new RegExp(`\\r\\n${name}: ([^\\r]*)\\r\\n`, 'i').exec(raw);
  return m?.[1];
}

/**
 * One kept-alive client connection: `ask(head)` sends a request head and resolves with the status
 * of the response it brings (waiting up to 3 s), so a test can act between requests.
 */
export async function keepAliveClient(
  port: number,
): Promise<{ ask: (head: string) => Promise<number | undefined>; close: () => void }> {
  const sock = net.connect(port, '127.0.0.1');
  let got = '';
  sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
  await new Promise((r) => sock.once('connect', r));
  return {
    ask: async (head: string) => {
      const before = statuses(got).length;
      sock.write(head);
      const deadline = Date.now() + 3000;
      while (statuses(got).length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      return statuses(got).at(-1);
    },
    close: () => sock.destroy(),
  };
}
