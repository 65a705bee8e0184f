#!/usr/bin/env node
// Entry point for `gpa` and its `azure-proxy-agent` compatible alias: runs the compiled CLI.
import { main } from '../dist/lib/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`gpa: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
