import { createRequire } from 'node:module';

/** The package version from package.json (the CLI's `version`, status.json's `version`). */
export function packageVersion(): string {
  const require = createRequire(import.meta.url);
  const pkg = require('../../package.json') as { version: string };
  return pkg.version;
}
