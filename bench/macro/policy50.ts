// A realistic IMDS policy with 50 privileges, 10 roles, 16 identities and 10 role assignments, the
// size of a fleet's hand-written allow-list. The privileges the bench's requests need sit at the end
// of their lists and overlap broader ones, so the matcher walks the whole policy on every request.
const SUBPATHS = [
  'compute',
  'compute/tags',
  'compute/tagsList',
  'compute/vmId',
  'compute/location',
  'compute/name',
  'compute/vmSize',
  'compute/osProfile',
  'compute/storageProfile',
  'compute/publicKeys',
  'compute/plan',
  'compute/securityProfile',
  'compute/zone',
  'network',
  'network/interface',
];
const TOKEN_RESOURCES = [
  'https://vault.azure.net',
  'https://storage.azure.com/',
  'https://database.windows.net/',
  'https://graph.microsoft.com/',
  'https://monitor.azure.com/',
  'https://servicebus.azure.net/',
  'https://eventhubs.azure.net/',
  'https://ossrdbms-aad.database.windows.net',
  'https://cognitiveservices.azure.com',
  'https://management.core.windows.net/',
];
const OTHER = [
  '/metadata/scheduledevents',
  '/metadata/attested/document',
  '/metadata/loadbalancer',
  '/metadata/versions',
  '/metadata/instance/compute/userData',
  '/metadata/instance/compute/customData',
  '/metadata/identity/info',
];

export interface BenchPolicy {
  item: Record<string, unknown>;
  privileges: number;
}

export function benchPolicy(): BenchPolicy {
  const privileges: { name: string; path: string; queryParameters?: Record<string, string> }[] = [];
  for (const sub of SUBPATHS) {
    for (const v of ['2021-02-01', '2023-07-01']) {
      privileges.push({
        name: `instance-${sub.replace('/', '-')}-${v}`,
        path: `/metadata/instance/${sub}`,
        queryParameters: { 'api-version': v },
      });
    }
  }
  for (const r of TOKEN_RESOURCES) {
    privileges.push({
      name: `token-${new URL(r).hostname}`,
      path: '/metadata/identity/oauth2/token',
      queryParameters: { resource: r },
    });
  }
  for (const p of OTHER) privileges.push({ name: `other${p.replace(/\//g, '-')}`, path: p });
  // Broad monitoring read (overlaps the bench's requests, assigned to other identities only).
  privileges.push({ name: 'monitoring-all-metadata', path: '/metadata' });
  // What the bench's clients ask for.
  privileges.push({
    name: 'instance-full',
    path: '/metadata/instance',
    queryParameters: { 'api-version': '2021-02-01' },
  });
  privileges.push({
    name: 'token-management',
    path: '/metadata/identity/oauth2/token',
    queryParameters: { resource: 'https://management.azure.com/' },
  });
  if (privileges.length !== 50) throw new Error(`bench policy has ${privileges.length} privileges, expected 50`);

  const names = privileges.map((p) => p.name);
  const roles = [
    { name: 'compute-readers', privileges: names.slice(0, 10) },
    { name: 'compute-admins', privileges: names.slice(10, 20) },
    { name: 'network-readers', privileges: names.slice(20, 24) },
    { name: 'vault-users', privileges: names.slice(24, 27) },
    { name: 'data-users', privileges: names.slice(27, 34) },
    { name: 'event-consumers', privileges: names.slice(34, 38) },
    { name: 'attestation', privileges: names.slice(38, 44) },
    { name: 'monitoring', privileges: names.slice(44, 48) },
    { name: 'instance-readers', privileges: ['instance-full', ...names.slice(0, 4)] },
    { name: 'token-users', privileges: ['token-management', ...names.slice(24, 30)] },
  ];
  const identities = [
    { name: 'azure-monitor', userName: 'azuremonitor', processName: 'mdsd' },
    { name: 'omsagent', userName: 'omsagent', exePath: '/opt/microsoft/omsagent/bin/omsagent' },
    { name: 'waagent', userName: 'root', exePath: '/usr/sbin/waagent' },
    { name: 'cloud-init', userName: 'root', processName: 'cloud-init' },
    { name: 'app-python', groupName: 'app', exePath: '/usr/bin/python3' },
    { name: 'app-java', groupName: 'app', processName: 'java' },
    { name: 'backup', userName: 'backup', processName: 'azbackup' },
    { name: 'sql-agent', userName: 'mssql', processName: 'sqlservr' },
    { name: 'keyvault-agent', userName: 'akvsvc', exePath: '/usr/local/bin/akvvm' },
    { name: 'deploy', groupName: 'deployers' },
    { name: 'telemetry', userName: 'telegraf', processName: 'telegraf' },
    { name: 'docker', groupName: 'docker', processName: 'dockerd' },
    { name: 'node-app', userName: 'node', processName: 'node' },
    { name: 'ops-admins', groupName: 'sudo', exePath: '/usr/bin/az' },
    { name: 'bench-wrk', userName: 'root', processName: 'wrk' },
    { name: 'bench-curl', userName: 'root', exePath: '/usr/bin/curl' },
  ];
  const roleAssignments = [
    { role: 'compute-readers', identities: ['azure-monitor', 'omsagent', 'app-python'] },
    { role: 'compute-admins', identities: ['waagent', 'cloud-init'] },
    { role: 'network-readers', identities: ['waagent', 'docker'] },
    { role: 'vault-users', identities: ['keyvault-agent', 'app-java'] },
    { role: 'data-users', identities: ['sql-agent', 'backup', 'app-python'] },
    { role: 'event-consumers', identities: ['app-java', 'node-app'] },
    { role: 'attestation', identities: ['deploy', 'ops-admins'] },
    { role: 'monitoring', identities: ['telemetry', 'azure-monitor'] },
    { role: 'instance-readers', identities: ['node-app', 'deploy', 'bench-wrk', 'bench-curl'] },
    { role: 'token-users', identities: ['app-java', 'ops-admins', 'bench-wrk', 'bench-curl'] },
  ];
  return {
    item: {
      defaultAccess: 'deny',
      mode: 'enforce',
      id: 'bench-policy-50',
      rules: { privileges, roles, identities, roleAssignments },
    },
    privileges: privileges.length,
  };
}
