import { parseArgs } from 'node:util';
import {
  DEFAULT_CONFIG_PATH,
  learnRules,
  readAuditRecords,
  readOperatorConfig,
  writeFileAtomic,
} from '../../status/index.js';

export const summary = 'learn --out FILE: least-privilege rules from audit records gathered in Audit mode';

const HELP = `usage: gpa learn --out FILE [--log FILE|DIR] [--config FILE] [--since ISO-TIME]
                 [--endpoint imds|wireserver|hostga] [--mode enforce|audit] [--id RULE-ID]

Reads the audit log (rotated files included) and writes authorization rules that allow exactly
the requests that were forwarded (allow or audit-deny): one privilege per canonical path, one
identity per (user, exe), one role per identity with the privileges it used; defaultAccess deny.
Requests that were denied or failed are never learned. The file holds one rule item per endpoint
({ "imds": {...}, "wireserver": {...} }). Check it before use:
  gpa policy check FILE
  gpa policy simulate --rules FILE --endpoint imds --method GET --url URL --user NAME --exe PATH
`;

/** `gpa learn` */
export async function run(argv: string[]): Promise<number> {
  let v: Record<string, string | boolean | undefined>;
  try {
    v = parseArgs({
      args: argv,
      options: {
        out: { type: 'string', short: 'o' },
        log: { type: 'string' },
        config: { type: 'string' },
        since: { type: 'string' },
        endpoint: { type: 'string' },
        mode: { type: 'string' },
        id: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`gpa learn: ${(err as Error).message}\n${HELP}`);
    return 2;
  }
  if (v.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (typeof v.out !== 'string') {
    process.stderr.write(`gpa learn: --out FILE is required (where to write the rules)\n${HELP}`);
    return 2;
  }
  if (v.mode !== undefined && v.mode !== 'enforce' && v.mode !== 'audit') {
    process.stderr.write(`gpa learn: --mode is enforce or audit, got '${v.mode}'\n`);
    return 2;
  }
  const since = typeof v.since === 'string' ? Date.parse(v.since) : Number.NEGATIVE_INFINITY;
  if (Number.isNaN(since)) {
    process.stderr.write(`gpa learn: --since takes an ISO time such as 2025-04-23T12:00:00Z, got '${v.since}'\n`);
    return 2;
  }
  const where =
    typeof v.log === 'string' ? v.log : readOperatorConfig((v.config as string) ?? DEFAULT_CONFIG_PATH).logFolder;
  const { records, files, bad } = readAuditRecords(where);
  if (files.length === 0) {
    process.stderr.write(
      `gpa learn: no audit log under ${where}; run the agent in Audit mode first, or point --log at the log.\n`,
    );
    return 1;
  }
  const picked = records.filter(
    (r) =>
      (v.endpoint === undefined || r.endpoint === v.endpoint) &&
      (Number.isFinite(since) ? Date.parse(r.time) >= since : true),
  );
  const learned = learnRules(picked, {
    ...(v.mode ? { mode: v.mode as 'enforce' | 'audit' } : {}),
    ...(typeof v.id === 'string' ? { id: v.id } : {}),
  });
  const endpoints = Object.keys(learned.rules);
  if (endpoints.length === 0) {
    process.stderr.write(
      `gpa learn: none of the ${picked.length} record(s) was a forwarded, attributed request; nothing to learn.\n`,
    );
    return 1;
  }
  writeFileAtomic(v.out, `${JSON.stringify(learned.rules, null, 2)}\n`, 0o600);
  const s = learned.skipped;
  process.stdout.write(
    `wrote ${v.out}: ${endpoints
      .map((e) => {
        const r = learned.rules[e as keyof typeof learned.rules]!.rules;
        return `${e} (${r.privileges.length} privilege(s), ${r.identities.length} identit${r.identities.length === 1 ? 'y' : 'ies'})`;
      })
      .join(', ')}\n` +
      `learned from ${learned.used.length} request(s); skipped ${s.notForwarded} denied/failed, ${s.unattributed} unattributed, ` +
      `${s.noCanonicalForm} non-canonical${bad ? `, ${bad} unreadable line(s)` : ''}\n` +
      `next: gpa policy check ${v.out}; then set the host's rules (or a local rule file) and switch to Enforce.\n`,
  );
  return 0;
}
