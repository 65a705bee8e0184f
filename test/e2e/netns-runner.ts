/**
 * Runs inside a sealed network namespace (started by netns.test.ts through nsenter): the emulator on
 * the real metadata addresses, the agent, and callers in a child cgroup. Prints one JSON line of
 * observations for the test to assert on. Never run it outside such a namespace.
 */
import { execFileSync } from 'node:child_process';
import { NOBODY, startStack, unsignedAt } from './harness.js';

const out: Record<string, unknown> = {};
const s = await startStack({
  realAddresses: true,
  settings: { enabled: true, modes: { imds: 'enforce', wireserver: 'enforce' } },
});
try {
  await s.waitForLog(/redirecting hostga/);
  // The redirect programs must be attached to the clients' cgroup before any client connects.
  const attached = execFileSync('bpftool', ['cgroup', 'show', s.cgroup.path], { encoding: 'utf8' });
  out.attached = ['connect4', 'connect6', 'sock_ops'].filter((p) => attached.includes(p));
  if ((out.attached as string[]).length !== 3) throw new Error(`programs not attached:\n${attached}`);
  const N = { uid: NOBODY, gid: 65534 };
  out.imdsUser = (await s.curl('http://169.254.169.254/metadata/instance?api-version=2021-02-01', N)).status;
  out.wireserverUser = (await s.curl('http://168.63.129.16/machine/?comp=goalstate', N)).status;
  out.wireserverRoot = (await s.curl('http://168.63.129.16/machine/?comp=goalstate')).status;
  out.hostgaRoot = (await s.curl('http://168.63.129.16:32526/health')).status;
  const j = s.emulator.journal().filter((e) => !e.rawTarget.startsWith('/secure-channel'));
  out.journal = j.map((e) => ({ endpoint: e.endpoint, target: e.rawTarget, signature: e.signature, claims: e.claims }));
  out.unsigned = [...unsignedAt(j, 'imds'), ...unsignedAt(j, 'wireserver'), ...unsignedAt(j, 'hostga')].length;
  out.stop = (await s.stop()).code;
} catch (err) {
  out.error = String((err as Error).stack ?? err);
  out.agentLog = s.stderr();
} finally {
  await s.cleanup();
}
process.stdout.write(`${JSON.stringify(out)}\n`);
