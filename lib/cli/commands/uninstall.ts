import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { OPERATOR_DEFAULTS, readOperatorConfig, SERVICE_NAME } from '../../status/index.js';
import { unitPaths } from './install.js';

export const summary = 'remove the systemd service and its pinned BPF links; --purge also removes config and state';

const HELP = `usage: gpa uninstall [--root DIR] [--unit-dir DIR] [--config PATH] [--purge]

Stops and disables ${SERVICE_NAME} (real root only), removes the unit file and the pinned BPF links
(otherwise the pinned redirect would keep refusing metadata connections with no agent to serve
them). The config and the state folder (keys, logs) stay unless --purge.
`;

/** `gpa uninstall` */
export async function run(argv: string[]): Promise<number> {
  let v: Record<string, string | boolean | undefined>;
  try {
    v = parseArgs({
      args: argv,
      options: {
        root: { type: 'string' },
        'unit-dir': { type: 'string' },
        config: { type: 'string' },
        purge: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`gpa uninstall: ${(err as Error).message}\n${HELP}`);
    return 2;
  }
  if (v.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const root = path.resolve((v.root as string | undefined) ?? '/');
  const realRoot = root === '/';
  if (realRoot && process.getuid?.() !== 0) {
    process.stderr.write('gpa uninstall: removing a system service needs root; run it with sudo\n');
    return 1;
  }
  const p = unitPaths(root, v['unit-dir'] as string | undefined, v.config as string | undefined);
  const cfg = readOperatorConfig(p.configFile);
  if (realRoot) {
    spawnSync('systemctl', ['disable', '--now', SERVICE_NAME], { stdio: 'inherit' });
  }
  const removed: string[] = [];
  const rm = (f: string) => {
    if (existsSync(f)) {
      rmSync(f, { recursive: true, force: true });
      removed.push(f);
    }
  };
  rm(p.unitFile);
  // Only the agent's own pin folder; never the whole bpffs.
  // Pinning off in the config now: an earlier config may still have pinned in the default folder.
  const pinDir = path.join(root, cfg.pinDir ?? OPERATOR_DEFAULTS.pinDir);
  if (pinDir !== path.join(root, '/sys/fs/bpf')) rm(pinDir);
  if (v.purge) {
    rm(p.configFile);
    rm(path.join(root, cfg.logFolder));
    rm(path.join(root, cfg.latchKeyFolder));
  }
  if (realRoot) spawnSync('systemctl', ['daemon-reload'], { stdio: 'inherit' });
  process.stdout.write(removed.length ? `removed:\n  ${removed.join('\n  ')}\n` : 'nothing to remove\n');
  return 0;
}
