import { packageVersion } from '../main.js';

export const summary = 'print the version';

export async function run(): Promise<number> {
  process.stdout.write(`${packageVersion()}\n`);
  return 0;
}
