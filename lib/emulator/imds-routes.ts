import { randomUUID } from 'node:crypto';
import { header, json, jsonText, type Reply, type RouteRequest, routePath } from './reply.js';

// 2018-02-01 is what most token clients still send, so the emulator accepts it like the real IMDS.
const API_VERSIONS = ['2017-04-02', '2018-02-01', '2018-10-01', '2019-06-01', '2020-09-01', '2021-02-01', '2023-07-01'];

function instanceDocument(): Record<string, unknown> {
  return {
    compute: {
      azEnvironment: 'AzurePublicCloud',
      location: 'emulator',
      name: 'gpa-emulated-vm',
      osType: 'Linux',
      resourceGroupName: 'gpa-emulator',
      subscriptionId: '00000000-0000-0000-0000-000000000000',
      vmId: '11111111-2222-3333-4444-555555555555',
      vmSize: 'Standard_D2s_v5',
    },
    network: {
      interface: [{ ipv4: { ipAddress: [{ privateIpAddress: '10.0.0.4', publicIpAddress: '' }] } }],
    },
  };
}

/** The whole instance document never changes: serialized once, not per request. */
const INSTANCE_JSON = JSON.stringify(instanceDocument());

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function token(resource: string): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  const accessToken = [
    b64url({ typ: 'JWT', alg: 'RS256' }),
    b64url({ aud: resource, iat: now, exp: now + 86399, oid: randomUUID() }),
    'ZW11bGF0b3Itc2lnbmF0dXJl',
  ].join('.');
  return {
    access_token: accessToken,
    client_id: '22222222-3333-4444-5555-666666666666',
    expires_in: '86399',
    expires_on: String(now + 86399),
    ext_expires_in: '86399',
    not_before: String(now),
    resource,
    token_type: 'Bearer',
  };
}

/** IMDS: instance metadata, managed-identity token and versions; `Metadata: true` required. */
export function imdsRoute(req: RouteRequest): Reply {
  if (header(req, 'metadata')?.toLowerCase() !== 'true') {
    return json(400, { error: 'Bad request. Required metadata header not specified' });
  }
  const path = routePath(req.rawPath);
  if (path === '/metadata/versions') return json(200, { apiVersions: API_VERSIONS });
  const needsVersion =
    path === '/metadata/instance' || path.startsWith('/metadata/instance/') || path.startsWith('/metadata/identity/');
  if (needsVersion && !req.query.get('api-version')) {
    return json(400, {
      error: 'Bad request. api-version was not specified in the request',
      newest_versions: API_VERSIONS.slice(-3),
    });
  }
  if (needsVersion && !API_VERSIONS.includes(req.query.get('api-version')!)) {
    return json(400, {
      error: 'Bad request. api-version is invalid or was not specified in the request',
      newest_versions: API_VERSIONS.slice(-3),
    });
  }
  if (path === '/metadata/instance') return jsonText(200, INSTANCE_JSON);
  if (path.startsWith('/metadata/instance/')) {
    let node: unknown = instanceDocument();
    for (const seg of path.slice('/metadata/instance/'.length).split('/')) {
      node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[seg] : undefined;
    }
    return node === undefined ? json(404, { error: 'Not found' }) : json(200, node);
  }
  if (path === '/metadata/identity/oauth2/token') {
    const resource = req.query.get('resource');
    if (!resource)
      return json(400, { error: 'invalid_request', error_description: 'Required query variable resource is missing' });
    return json(200, token(resource));
  }
  return json(404, { error: 'Not found' });
}
