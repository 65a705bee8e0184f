import { readdirSync } from 'node:fs';
import { packageVersion } from '../version.js';

export { packageVersion };

/**
 * A CLI command module: `lib/cli/commands/<name>.ts` exports `summary` and `run`. Commands are
 * found by file name and loaded only when asked for, so each part owns its own command file and the
 * CLI starts fast.
 */
export interface CommandModule {
  summary: string;
  run(argv: string[]): Promise<number>;
}

const COMMANDS_DIR = new URL('./commands/', import.meta.url);
const NAME = /^[a-z][a-z0-9-]*$/;

function commandNames(): string[] {
  try {
    return readdirSync(COMMANDS_DIR)
      .filter((f) => f.endsWith('.js'))
      .map((f) => f.slice(0, -3))
      .filter((n) => NAME.test(n))
      .sort();
  } catch {
    return [];
  }
}

async function load(name: string): Promise<CommandModule | undefined> {
  if (!NAME.test(name) || !commandNames().includes(name)) return undefined;
  return (await import(new URL(`${name}.js`, COMMANDS_DIR).href)) as CommandModule;
}

async function usage(): Promise<string> {
  const lines: string[] = [];
  for (const n of commandNames()) lines.push(`  ${n.padEnd(12)} ${(await load(n))?.summary ?? ''}`);
  return `usage: gpa <command> [options]\n       gpa --status [--wait N]\n       gpa --version\n\ncommands:\n${lines.join('\n')}\n`;
}

/** Runs the CLI with the given arguments and resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--version' || first === '-V') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  // `azure-proxy-agent --status --wait 120` is what cloud-init calls.
  if (first === '--status') return runCommand('status', rest);
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(await usage());
    return first === undefined ? 2 : 0;
  }
  return runCommand(first, rest);
}

async function runCommand(name: string, argv: string[]): Promise<number> {
  const mod = await load(name);
  if (!mod) {
    process.stderr.write(`gpa: unknown command '${name}'\n${await usage()}`);
    return 2;
  }
  return mod.run(argv);
}
