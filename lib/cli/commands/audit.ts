import { statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  AUDIT_LOG_NAME,
  type AuditFilter,
  DEFAULT_CONFIG_PATH,
  followFile,
  formatAuditRecord,
  matchesAudit,
  parseAuditLines,
  readAuditRecords,
  readOperatorConfig,
} from '../../status/index.js';

export const summary =
  'audit tail [-n N] [-f] [--user U|--uid N] [--exe PATH] [--decision D] [--endpoint E]: read the audit log';

const HELP = `usage: gpa audit tail [-n N] [-f] [--user NAME | --uid N] [--exe PATH|NAME]
                      [--decision allow|deny|audit-deny|error|local] [--endpoint imds|wireserver|hostga]
                      [--log FILE|DIR] [--config FILE] [--json]

Shows the last N (default 20) records of ${AUDIT_LOG_NAME} (rotated files included), oldest first,
one line each: time, decision, status, endpoint, method and target, user(uid), exe, pid, and the
reason code with the rule that decided. -f keeps following new records. --json prints raw records.
`;

/** `gpa audit tail ...` */
export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'tail') {
    process.stderr.write(`gpa audit: unknown subcommand '${sub}'\n${HELP}`);
    return 2;
  }
  let v: Record<string, string | boolean | undefined>;
  try {
    v = parseArgs({
      args: rest,
      options: {
        lines: { type: 'string', short: 'n' },
        follow: { type: 'boolean', short: 'f' },
        user: { type: 'string' },
        uid: { type: 'string' },
        exe: { type: 'string' },
        decision: { type: 'string' },
        endpoint: { type: 'string' },
        log: { type: 'string' },
        config: { type: 'string' },
        json: { type: 'boolean' },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`gpa audit tail: ${(err as Error).message}\n${HELP}`);
    return 2;
  }
  const n = v.lines === undefined ? 20 : Number(v.lines);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`gpa audit tail: -n takes a whole number, got '${v.lines}'\n`);
    return 2;
  }
  if (v.decision !== undefined && !['allow', 'deny', 'audit-deny', 'error', 'local'].includes(v.decision as string)) {
    process.stderr.write(
      `gpa audit tail: --decision is one of allow, deny, audit-deny, error, local (got '${v.decision}')\n`,
    );
    return 2;
  }
  if (v.endpoint !== undefined && !['imds', 'wireserver', 'hostga'].includes(v.endpoint as string)) {
    process.stderr.write(`gpa audit tail: --endpoint is one of imds, wireserver, hostga (got '${v.endpoint}')\n`);
    return 2;
  }
  const filter: AuditFilter = {};
  if (typeof v.user === 'string') filter.user = v.user;
  if (typeof v.uid === 'string') filter.uid = Number(v.uid);
  if (typeof v.exe === 'string') filter.exe = v.exe;
  if (typeof v.decision === 'string') filter.decision = v.decision;
  if (typeof v.endpoint === 'string') filter.endpoint = v.endpoint;

  const where =
    typeof v.log === 'string' ? v.log : readOperatorConfig((v.config as string) ?? DEFAULT_CONFIG_PATH).logFolder;
  const { records, bad, files } = readAuditRecords(where);
  if (files.length === 0) {
    process.stderr.write(
      `gpa audit tail: no ${AUDIT_LOG_NAME} under ${where}. Is the agent running with this log folder? Use --log DIR or --config FILE.\n`,
    );
    return 1;
  }
  const print = (r: (typeof records)[number]) =>
    process.stdout.write(`${v.json ? JSON.stringify(r) : formatAuditRecord(r)}\n`);
  const shown = records.filter((r) => matchesAudit(r, filter));
  for (const r of n === 0 ? [] : shown.slice(-n)) print(r);
  if (bad > 0) process.stderr.write(`(${bad} unreadable line(s) skipped)\n`);
  if (!v.follow) return 0;

  const current = files[0]!;
  const file = statSync(current).isFile() ? current : path.join(current, AUDIT_LOG_NAME);
  const stop = followFile(file, statSync(file).size, (text) => {
    for (const r of parseAuditLines(text).records) if (matchesAudit(r, filter)) print(r);
  });
  await new Promise<void>((resolve) => {
    const done = () => {
      stop();
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  return 0;
}
