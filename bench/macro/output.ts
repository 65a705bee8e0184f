// Writes bench/results/<date>-<host>.json and the chart (SVG, plus a PNG when rsvg-convert exists).
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** bench/results in the source tree (this file runs from dist/bench/macro/). */
export const RESULTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bench/results');

export function resultBaseName(date: Date, hostname: string): string {
  const stamp = date.toISOString().slice(0, 16).replace(/[:T]/g, '-');
  return `${stamp}-${hostname.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
}

/**
 * The result file suffix of the agent's variant: `-agent-node24` when it ran on another Node major
 * (`--agent-node`), `-node-sockets` with `--agent-client-sockets node`; '' for the default agent.
 */
export function agentSuffix(info: { node: string; agentNode: string }, clientSockets: 'native' | 'node'): string {
  return agentNodeSuffix(info) + (clientSockets === 'node' ? '-node-sockets' : '');
}

/** `-agent-node24` when the agent ran on another Node major than the bench (`--agent-node`), else ''. */
export function agentNodeSuffix(info: { node: string; agentNode: string }): string {
  if (info.agentNode === info.node) return '';
  return `-agent-node${info.agentNode.replace(/^v/, '').split('.')[0]}`;
}

export function writeResults(base: string, json: unknown, svg: string): { json: string; svg: string; png?: string } {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const files: { json: string; svg: string; png?: string } = {
    json: path.join(RESULTS_DIR, `${base}.json`),
    svg: path.join(RESULTS_DIR, `${base}.svg`),
  };
  writeFileSync(files.json, `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(files.svg, svg);
  const png = path.join(RESULTS_DIR, `${base}.png`);
  const r = spawnSync('rsvg-convert', ['-o', png, files.svg], { stdio: 'ignore' });
  if (r.status === 0) files.png = png;
  return files;
}
