import { json, type Reply, type RouteRequest, routePath } from './reply.js';

/** HostGAPlugin: a health probe, a status document and VM settings. */
export function hostgaRoute(req: RouteRequest): Reply {
  const path = routePath(req.rawPath);
  if (path === '/health') return { status: 200, headers: { 'content-type': 'text/plain' }, body: 'OK' };
  if (path === '/status') return json(200, { hostGAPluginVersion: '1.0.8.0-emulator', status: 'Ready' });
  if (path === '/vmsettings') {
    return json(200, {
      hostGAPluginVersion: '1.0.8.0-emulator',
      vmSettingsSchemaVersion: '0.0',
      extensionGoalStates: [],
    });
  }
  return json(404, { error: 'Not found' });
}
