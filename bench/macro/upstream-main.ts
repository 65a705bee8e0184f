// Entry point of the upstream process: the metadata host emulator (lib/emulator), configured for
// one side of the comparison, in a process of its own. Prints `READY <json>` with its addresses.
//   argv[2]: JSON UpstreamConfig
import { startBuiltinUpstream } from './builtin-upstream.js';
import type { UpstreamConfig, UpstreamReady } from './upstream.js';

const cfg = JSON.parse(process.argv[2] ?? '{}') as UpstreamConfig;

async function main(): Promise<UpstreamReady> {
  if (cfg.builtin) {
    const a = await startBuiltinUpstream(cfg.imds.host, cfg.imds.port);
    return { imds: { host: a.host, port: a.port }, builtin: true };
  }
  const { startEmulatorFor } = await import('./emulator-adapter.js');
  return startEmulatorFor(cfg);
}

main().then(
  (ready) => process.stdout.write(`READY ${JSON.stringify(ready)}\n`),
  (err: unknown) => {
    process.stderr.write(`upstream: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
process.on('SIGTERM', () => process.exit(0));
