import { parseArgs } from 'node:util';
import { DEFAULT_CONFIG_PATH, provisionExitCode, queryProvision, readOperatorConfig } from '../../status/index.js';

export const summary =
  'provisioning status: --status [--wait N] exits 0 finished, 1 not yet/timed out, 2 finished with error';

const HELP = `usage: gpa --status [--wait SECONDS] [--config FILE] [--port N] [--host ADDR] [--json]

Asks the running agent (GET /provision on its listener) whether provisioning finished:
the eBPF redirector attached, the secure-channel key latched, and the listener bound.
  exit 0  finished
  exit 1  not finished yet, or --wait ran out, or the agent is not reachable
  exit 2  finished with an error (the message says which part failed and what to do)
`;

/** `gpa --status [--wait N]` (also `gpa status`). */
export async function run(argv: string[]): Promise<number> {
  let values: { wait?: string; config?: string; port?: string; host?: string; json?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        wait: { type: 'string' },
        config: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    process.stderr.write(`gpa --status: ${(err as Error).message}\n${HELP}`);
    return 1;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const wait = values.wait === undefined ? 0 : Number(values.wait);
  if (!Number.isFinite(wait) || wait < 0 || wait > 86_400) {
    process.stderr.write(`gpa --status: --wait takes a number of seconds (0-86400), got '${values.wait}'\n`);
    return 1;
  }
  const cfg = readOperatorConfig(values.config ?? DEFAULT_CONFIG_PATH);
  const port = values.port === undefined ? cfg.listenerPort : Number(values.port);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    process.stderr.write(`gpa --status: --port takes a TCP port, got '${values.port}'\n`);
    return 1;
  }
  const host = values.host ?? cfg.listenerAddress;
  const r = await queryProvision({ host, port, waitSeconds: wait });
  const code = provisionExitCode(r);
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ finished: r.finished, errorMessage: r.errorMessage, reachable: r.reachable, exitCode: code })}\n`,
    );
  } else if (code === 0) {
    process.stdout.write('provisioning finished: redirector attached, key latched, listener bound\n');
  } else if (code === 2) {
    process.stdout.write(`provisioning finished with errors:\n${r.errorMessage}\n`);
  } else if (!r.reachable) {
    process.stdout.write(
      `provisioning not finished: the agent did not answer on ${host}:${port}${r.lastError ? ` (${r.lastError})` : ''}.\n` +
        `Is it running? 'systemctl status azure-proxy-agent' or 'gpa doctor'.\n`,
    );
  } else {
    process.stdout.write(
      `provisioning not finished${wait > 0 ? ` after ${wait} s` : ''}${r.errorMessage ? `:\n${r.errorMessage}` : ''}\n`,
    );
  }
  return code;
}
