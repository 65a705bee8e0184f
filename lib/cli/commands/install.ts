import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  DEFAULT_CONFIG_PATH,
  defaultConfigText,
  renderUnit,
  SERVICE_NAME,
  writeFileAtomic,
} from '../../status/index.js';

export const summary =
  'install the systemd service (sandboxed, Restart=always); --root DIR installs into a staging tree';

const HELP = `usage: gpa install [--root DIR] [--unit-dir DIR] [--config PATH] [--no-start]

Writes ${SERVICE_NAME}.service (Restart=always, ProtectSystem=strict, NoNewPrivileges, IPAddressAllow
loopback + metadata only, a minimal capability bounding set) and, if missing, a default config at
${DEFAULT_CONFIG_PATH}. With the real root it then runs 'systemctl daemon-reload' and
'systemctl enable --now ${SERVICE_NAME}' (unless --no-start). With --root DIR (packaging, tests)
files go under DIR and systemctl is never called.
`;

/** The package folder this CLI runs from (bin/gpa.mjs lives there). */
export function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
}

export function unitPaths(root: string, unitDir: string | undefined, config: string | undefined) {
  const inRoot = (p: string) => path.join(root, p);
  return {
    unitFile: path.join(unitDir ?? inRoot('/etc/systemd/system'), `${SERVICE_NAME}.service`),
    configInUnit: config ?? DEFAULT_CONFIG_PATH,
    configFile: inRoot(config ?? DEFAULT_CONFIG_PATH),
  };
}

/** `gpa install` */
export async function run(argv: string[]): Promise<number> {
  let v: Record<string, string | boolean | undefined>;
  try {
    v = parseArgs({
      args: argv,
      options: {
        root: { type: 'string' },
        'unit-dir': { type: 'string' },
        config: { type: 'string' },
        'no-start': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`gpa install: ${(err as Error).message}\n${HELP}`);
    return 2;
  }
  if (v.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const root = path.resolve((v.root as string | undefined) ?? '/');
  const realRoot = root === '/';
  if (realRoot && process.getuid?.() !== 0) {
    process.stderr.write(
      'gpa install: installing a system service needs root; run it with sudo (or use --root DIR to stage files)\n',
    );
    return 1;
  }
  const p = unitPaths(root, v['unit-dir'] as string | undefined, v.config as string | undefined);
  const pkg = packageRoot();
  mkdirSync(path.dirname(p.unitFile), { recursive: true, mode: 0o755 });
  writeFileAtomic(
    p.unitFile,
    renderUnit({ nodePath: process.execPath, gpaPath: path.join(pkg, 'bin', 'gpa.mjs'), configPath: p.configInUnit }),
    0o644,
  );
  process.stdout.write(`wrote ${p.unitFile}\n`);
  if (!existsSync(p.configFile)) {
    mkdirSync(path.dirname(p.configFile), { recursive: true, mode: 0o755 });
    writeFileAtomic(p.configFile, defaultConfigText(), 0o644);
    process.stdout.write(`wrote ${p.configFile} (defaults; edit it, then 'systemctl restart ${SERVICE_NAME}')\n`);
  } else {
    process.stdout.write(`kept existing ${p.configFile}\n`);
  }
  if (!realRoot) return 0;
  for (const args of [
    ['daemon-reload'],
    v['no-start'] ? ['enable', SERVICE_NAME] : ['enable', '--now', SERVICE_NAME],
  ]) {
    const r = spawnSync('systemctl', args, { stdio: 'inherit' });
    if (r.status !== 0) {
      process.stderr.write(`gpa install: 'systemctl ${args.join(' ')}' failed; see 'journalctl -u ${SERVICE_NAME}'\n`);
      return 1;
    }
  }
  process.stdout.write(
    `${SERVICE_NAME} enabled${v['no-start'] ? '' : ' and started'}; check it with 'gpa doctor' and 'gpa --status'\n`,
  );
  return 0;
}
