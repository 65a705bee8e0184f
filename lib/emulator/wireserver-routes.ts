import { keyJson } from './host-state.js';
import { json, type Reply, type RouteRequest, routePath, xml } from './reply.js';

const VERSIONS_XML =
  '<?xml version="1.0" encoding="utf-8"?>\n<Versions><Preferred><Version>2015-04-05</Version></Preferred>' +
  '<Supported><Version>2015-04-05</Version><Version>2012-11-30</Version></Supported></Versions>';

function goalStateXml(incarnation: number): string {
  return (
    '<?xml version="1.0" encoding="utf-8"?>\n<GoalState><Version>2015-04-05</Version>' +
    `<Incarnation>${incarnation}</Incarnation><Machine><ExpectedState>Started</ExpectedState></Machine>` +
    '<Container><ContainerId>00000000-0000-0000-0000-000000000000</ContainerId>' +
    '<RoleInstanceList><RoleInstance><InstanceId>gpa-emulated-vm</InstanceId></RoleInstance></RoleInstanceList>' +
    '</Container></GoalState>'
  );
}

const ATTEST = /^\/secure-channel\/key\/([^/]+)\/key-attestation$/;

/** Secure-channel calls the host answers without a signature (by protocol, not by exemption). */
export function isSecureChannelHandshake(method: string, rawPath: string): boolean {
  const p = routePath(rawPath);
  return (method === 'GET' && p === '/secure-channel/status') || (method === 'POST' && p === '/secure-channel/key');
}

function acquire(req: RouteRequest): Reply {
  let body: unknown;
  try {
    body = JSON.parse(req.body.toString('utf8'));
  } catch {
    return json(400, { error: 'request body must be JSON {"authorizationScheme": "Azure-HMAC-SHA256"}' });
  }
  if ((body as { authorizationScheme?: unknown } | null)?.authorizationScheme !== 'Azure-HMAC-SHA256') {
    return json(400, { error: 'authorizationScheme must be Azure-HMAC-SHA256' });
  }
  return { status: 200, headers: { 'content-type': 'application/json' }, body: keyJson(req.host.acquireKey()) };
}

function attest(req: RouteRequest, guid: string): Reply {
  const key = req.host.key;
  if (!key || key.guid.toLowerCase() !== guid.toLowerCase()) return json(404, { error: `unknown key ${guid}` });
  if (req.signature !== 'valid') return json(401, { error: `attestation must be signed with key ${key.guid}` });
  key.attested = true;
  return json(200, { guid: key.guid, attested: true });
}

/** WireServer: secure channel, versions, goal state and the two exempt upload targets. */
export function wireserverRoute(req: RouteRequest): Reply {
  const path = routePath(req.rawPath);
  const m = req.method;
  if (path === '/secure-channel/status') {
    return m === 'GET'
      ? { status: 200, headers: { 'content-type': 'application/json' }, body: req.host.statusBody() }
      : json(405, {});
  }
  if (path === '/secure-channel/key') return m === 'POST' ? acquire(req) : json(405, {});
  const a = ATTEST.exec(path);
  if (a) return m === 'POST' ? attest(req, a[1]!) : json(405, {});
  if (path === '/' && req.query.get('comp') === 'versions') return xml(200, VERSIONS_XML);
  if (path === '/machine' && req.query.get('comp') === 'goalstate')
    return xml(200, goalStateXml(req.host.incarnationId));
  if (path === '/machine' && req.query.get('comp') === 'telemetrydata')
    return m === 'POST' ? { status: 200 } : json(405, {});
  if (path === '/vmagentlog') return m === 'PUT' ? { status: 201 } : json(405, {});
  return json(404, { error: 'Not found' });
}
