/**
 * Reads the tagged blocks of docs/walkthrough.md, so the walkthrough tests run exactly what the page
 * shows. A block is a fenced code block preceded by an HTML comment `<!-- wt:KIND [ARG] -->`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (tests run from dist/test/walkthrough). */
export const repoRoot = path.resolve(here, '..', '..', '..');
export const WALKTHROUGH = path.join(repoRoot, 'docs', 'walkthrough.md');

export interface DocBlock {
  kind: string;
  arg: string | null;
  lang: string;
  text: string;
  /** 1-based line of the tag, for error messages. */
  line: number;
}

const TAG = /^<!-- wt:([a-z-]+)(?: (\S+))? -->$/;

/** Every tagged block in document order; throws when a tag is not followed by a fenced block. */
export function readDocBlocks(file = WALKTHROUGH): DocBlock[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = TAG.exec(lines[i]!.trim());
    if (!m) continue;
    const open = /^```(\w*)/.exec(lines[i + 1] ?? '');
    if (!open) throw new Error(`${file}:${i + 1}: tag wt:${m[1]} is not followed by a fenced block`);
    const end = lines.indexOf('```', i + 2);
    if (end === -1) throw new Error(`${file}:${i + 2}: unterminated fenced block`);
    blocks.push({
      kind: m[1]!,
      arg: m[2] ?? null,
      lang: open[1]!,
      text: lines.slice(i + 2, end).join('\n'),
      line: i + 1,
    });
    i = end;
  }
  return blocks;
}

/** One command of a `sh` block with what its output should start with (`# → TEXT`), if anything. */
export interface DocCommand {
  command: string;
  expect: string | null;
}

/** Splits a block into commands (joining `\` continuations) and their `# → ...` expectations. */
export function commandsOf(block: DocBlock): DocCommand[] {
  const out: DocCommand[] = [];
  let pending = '';
  for (const raw of block.text.split('\n')) {
    if (raw.endsWith('\\')) {
      pending += `${raw.slice(0, -1)} `;
      continue;
    }
    const line = pending + raw;
    pending = '';
    if (line.trim() === '') continue;
    const m = /^(.*?)\s+# → (.+)$/.exec(line);
    out.push(m ? { command: m[1]!.trim(), expect: m[2]!.trim() } : { command: line.trim(), expect: null });
  }
  return out;
}

/** True when the block states an expected output for at least one command (then it runs line by line). */
export function hasExpectations(block: DocBlock): boolean {
  return block.text.split('\n').some((l) => / # → /.test(l));
}

/** Makes audit-tail output comparable across runs: times, pids and generated rule ids vary. */
export function normalizeAuditLines(text: string): string[] {
  const lines = text
    .trim()
    .split('\n')
    .map((l) =>
      l
        .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, '<time>')
        .replace(/ pid \d+/g, ' pid <pid>')
        .replace(/\b(emu-(?:imds|wireserver|hostga))-[0-9a-f]{12}\b/g, '$1-<id>')
        .trimEnd(),
    );
  // `gpa --status --wait` asks /provision until provisioning has finished: once when the agent was
  // ready at its first query, more often when the query came while the first key snapshot was still
  // being applied. How many is timing, not behaviour: a run of its records counts as one.
  return lines.filter((l, i) => !(PROVISION_QUERY.test(l) && l === lines[i - 1]));
}

const PROVISION_QUERY = /^<time>\s+local\s+200\s+-\s+GET \/provision\s+unattributed\s+\[local\]$/;
