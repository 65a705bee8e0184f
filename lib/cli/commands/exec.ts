import { spawn, spawnSync } from 'node:child_process';
import { readDemoState, sandboxArgv } from '../../status/index.js';

export const summary = 'exec [--user NAME|--uid N] -- CMD...: run a command inside the running demo sandbox';

const HELP = `usage: gpa exec [--user NAME | --uid N] -- COMMAND [ARGS...]

Runs COMMAND inside the sandbox of a running 'gpa demo' (its network namespace, where the metadata
addresses live, and its cgroup, where the redirect is attached), as the given user (default root).
Example:
  gpa exec --user nobody -- curl -s -H Metadata:true 'http://169.254.169.254/metadata/instance?api-version=2021-02-01'
`;

/** Resolves a user name or uid to uid/gid/name with id(1) (NSS-aware). */
function resolveUser(spec: {
  user?: string;
  uid?: string;
}): { uid: number; gid: number; name: string | null } | string {
  const who = spec.user ?? spec.uid!;
  if (spec.uid !== undefined && !/^\d+$/.test(spec.uid)) return `--uid takes a number, got '${spec.uid}'`;
  const q = (flag: string) => spawnSync('id', [flag, who], { encoding: 'utf8' });
  const u = q('-u');
  const g = q('-g');
  const n = q('-un');
  if (u.status !== 0) {
    if (spec.uid !== undefined) return { uid: Number(spec.uid), gid: Number(spec.uid), name: null };
    return `no such user '${who}' (check 'getent passwd ${who}')`;
  }
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()), name: n.status === 0 ? n.stdout.trim() : null };
}

/** `gpa exec` */
export async function run(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const opts = dash === -1 ? argv : argv.slice(0, dash);
  const cmd = dash === -1 ? [] : argv.slice(dash + 1);
  if (opts.includes('--help') || opts.includes('-h') || cmd.length === 0) {
    (cmd.length === 0 && !opts.includes('--help') ? process.stderr : process.stdout).write(HELP);
    return cmd.length === 0 && !opts.includes('--help') ? 2 : 0;
  }
  const spec: { user?: string; uid?: string } = {};
  for (let i = 0; i < opts.length; i++) {
    if (opts[i] === '--user' && opts[i + 1]) spec.user = opts[++i];
    else if (opts[i] === '--uid' && opts[i + 1]) spec.uid = opts[++i];
    else {
      process.stderr.write(`gpa exec: unknown option '${opts[i]}'\n${HELP}`);
      return 2;
    }
  }
  const state = readDemoState();
  if (!state) {
    process.stderr.write(
      "gpa exec: no demo sandbox is running; start one with 'npm start' (or 'gpa demo') in another terminal\n",
    );
    return 2;
  }
  let user: { uid: number; gid: number; name: string | null } | null = null;
  if (spec.user !== undefined || spec.uid !== undefined) {
    const r = resolveUser(spec);
    if (typeof r === 'string') {
      process.stderr.write(`gpa exec: ${r}\n`);
      return 2;
    }
    user = r;
  }
  const [bin, ...args] = sandboxArgv(state, user, cmd);
  const child = spawn(bin!, args, { stdio: 'inherit' });
  return new Promise((resolve) => {
    child.on('error', (err) => {
      process.stderr.write(`gpa exec: ${err.message}\n`);
      resolve(127);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
