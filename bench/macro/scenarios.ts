// The request patterns measured. Metadata clients mostly open a new connection per request (curl,
// most SDKs' default clients), so both connection patterns matter, at 1 and 32 concurrent clients.
export const PATHS = {
  instance: '/metadata/instance?api-version=2021-02-01',
  token: '/metadata/identity/oauth2/token?api-version=2019-06-01&resource=https%3A%2F%2Fmanagement.azure.com%2F',
} as const;

export type PathName = keyof typeof PATHS;

export interface Scenario {
  id: string;
  path: PathName;
  keepAlive: boolean;
  clients: number;
}

export function allScenarios(paths: PathName[] = ['instance', 'token']): Scenario[] {
  const out: Scenario[] = [];
  for (const path of paths) {
    for (const keepAlive of [true, false]) {
      for (const clients of [1, 32]) {
        out.push({ id: `${path}-${keepAlive ? 'ka' : 'newconn'}-c${clients}`, path, keepAlive, clients });
      }
    }
  }
  return out;
}

export function describe(s: Scenario): string {
  return `${s.path} ${s.keepAlive ? 'keep-alive' : 'new conn/req'} ${s.clients} client${s.clients > 1 ? 's' : ''}`;
}
