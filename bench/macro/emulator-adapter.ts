// Starts lib/emulator for one side of the comparison. Loaded only inside the upstream process.
import type { UpstreamConfig, UpstreamReady } from './upstream.js';

// Resolved at run time so the harness compiles and runs (with --builtin-upstream) without it.
const EMULATOR = '../../lib/emulator/index.js';
const REDIRECTOR = '../../lib/redirector/index.js';

interface EmulatorLike {
  addresses: Record<'imds' | 'wireserver' | 'hostga', { host: string; port: number }>;
}
type StartEmulator = (opts: Record<string, unknown>) => Promise<EmulatorLike>;

/** The addon's HMAC-SHA256 when it is built (Linux), else null: node:crypto verifies. */
async function benchHmac(): Promise<unknown> {
  try {
    const { nativeHmac } = (await import(REDIRECTOR)) as { nativeHmac?: () => unknown };
    return nativeHmac?.() ?? null;
  } catch {
    return null;
  }
}

export async function startEmulatorFor(cfg: UpstreamConfig): Promise<UpstreamReady> {
  let start: StartEmulator | undefined;
  try {
    start = ((await import(EMULATOR)) as { startEmulator?: StartEmulator }).startEmulator;
  } catch (e) {
    throw new Error(`lib/emulator is not available (${(e as Error).message}); build it, or pass --builtin-upstream`);
  }
  if (typeof start !== 'function') throw new Error('lib/emulator does not export startEmulator');
  const settings =
    cfg.role === 'floor'
      ? // The floor: secure channel off, so unsigned requests are served as on a host without MSP.
        { enabled: false }
      : // The agent's host: v2 payload, both endpoints Enforce, the bench's IMDS policy.
        {
          enabled: true,
          version: '2.0',
          modes: { imds: 'enforce', wireserver: 'enforce' },
          ...(cfg.imdsRules ? { rules: { imds: cfg.imdsRules } } : {}),
        };
  const emu = await start({
    imds: cfg.imds,
    wireserver: cfg.wireserver ?? { host: '127.63.129.16', port: 0 },
    hostga: cfg.hostga ?? { host: '127.63.129.16', port: 0 },
    control: null,
    settings,
    // The journal (every request the host saw, for tests to read) is not read here; it keeps only the
    // last request. With 1000 entries, each request's entry outlived the young generation once V8's
    // memory reducer had shrunk the heap in the pause between rounds: about 2 KiB promoted per
    // request, and the agent's host spent 55-62 µs of CPU per signed request at 32 clients instead
    // of 40-45 (the floor, whose entries are smaller, 2-3 µs more). Both hosts keep the same one.
    journalLimit: 1,
    // The host verifies every signature on the cores being measured (the real host does it on its
    // own hardware): with the addon's HMAC it costs that shared CPU about 1.3 µs less per request.
    hmac: await benchHmac(),
  });
  return {
    imds: emu.addresses.imds,
    wireserver: emu.addresses.wireserver,
    hostga: emu.addresses.hostga,
    verifies: true,
  };
}
