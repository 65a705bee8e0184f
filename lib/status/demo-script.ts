import type { DemoSandbox } from './sandbox.js';

/**
 * What the first-run demo shows: the host settings it gives the emulator and the requests it makes.
 * IMDS is in Audit mode with a rule that lets only root read /metadata/instance, so a non-root read is
 * forwarded but recorded as audit-deny; WireServer is in Enforce mode, so non-root is refused (the
 * root-only default) and root's request is signed.
 */
export function demoHostSettings(): Record<string, unknown> {
  return {
    version: '2.0',
    enabled: true,
    modes: { imds: 'audit', wireserver: 'enforce' },
    rules: {
      imds: {
        defaultAccess: 'deny',
        mode: 'audit',
        id: 'demo-imds-1',
        rules: {
          privileges: [{ name: 'instance', path: '/metadata/instance' }],
          roles: [{ name: 'read-instance', privileges: ['instance'] }],
          identities: [{ name: 'root-user', userName: 'root' }],
          roleAssignments: [{ role: 'read-instance', identities: ['root-user'] }],
        },
      },
    },
  };
}

export interface DemoRequest {
  user: 'root' | 'nobody';
  url: string;
  expect: string;
}

export function demoRequests(): DemoRequest[] {
  const imds = 'http://169.254.169.254/metadata/instance?api-version=2021-02-01';
  const goal = 'http://168.63.129.16/machine/?comp=goalstate';
  return [
    { user: 'root', url: imds, expect: 'allowed by rule, signed' },
    { user: 'nobody', url: imds, expect: 'audit-deny: forwarded, recorded' },
    { user: 'nobody', url: goal, expect: 'denied: WireServer is root-only, Enforce' },
    { user: 'root', url: goal, expect: 'allowed, signed' },
  ];
}

/** Prints how to try the sandbox by hand. */
export function printTryIt(s: DemoSandbox, config: string): void {
  const log = `${s.stateDir}/log`;
  process.stdout.write(`
Try it yourself (in another terminal, as root):
  gpa exec --user nobody -- curl -s -H Metadata:true 'http://169.254.169.254/metadata/instance?api-version=2021-02-01'
  gpa exec --user nobody -- curl -s -i http://168.63.129.16/machine/?comp=goalstate      # 403
  gpa exec -- curl -s -i http://168.63.129.16/machine/?comp=goalstate                    # root: 200
  (bin/gpa.mjs is the gpa command: 'node bin/gpa.mjs exec ...' from the repository)

Where things are:
  audit log   ${log}/ProxyAgent.Connection.log      gpa audit tail --log ${log} -f
  status      ${log}/status.json
  metrics     gpa exec -- curl -s http://127.0.0.1:${s.metricsPort}/metrics
  doctor      gpa exec -- node bin/gpa.mjs doctor --config ${config}
  sandbox     netns ${s.netns} (only lo: 169.254.169.254, 168.63.129.16), cgroup ${s.cgroup}
`);
}
