import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type EmulatorOptions, type HostPort, startEmulator, watchVmModelFile } from '../../emulator/index.js';

export const summary = 'run the metadata host emulator (IMDS, WireServer, HostGAPlugin) in the foreground';

const USAGE = `usage: gpa emulator [--imds HOST:PORT] [--wireserver HOST:PORT] [--hostga HOST:PORT]
                    [--control HOST:PORT | --control-socket PATH] [--vm-model FILE] [--profiles DIR]
Defaults: IMDS 127.254.169.254:0, WireServer and HostGAPlugin 127.63.129.16:0, control 127.0.0.1:0
(port 0 = ephemeral). Prints one JSON line with the bound addresses, then runs until SIGINT/SIGTERM.
SIGHUP (or editing the file) reloads --vm-model. See docs/emulator.md.
`;

function hostPort(value: string, flag: string): HostPort {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port > 65535) throw new Error(`${flag} ${JSON.stringify(value)}: expected HOST:PORT, e.g. 127.0.0.1:0`);
  return { host: m[1]!, port };
}

/** `gpa emulator`: exit 0 after a clean shutdown, 2 on bad arguments or a bad VM model. */
export async function run(argv: string[]): Promise<number> {
  let opts: EmulatorOptions;
  let vmModel: string | undefined;
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        imds: { type: 'string' },
        wireserver: { type: 'string' },
        hostga: { type: 'string' },
        control: { type: 'string' },
        'control-socket': { type: 'string' },
        'vm-model': { type: 'string' },
        profiles: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (values.control && values['control-socket']) throw new Error('give --control or --control-socket, not both');
    opts = {
      log: (msg) => process.stderr.write(`gpa emulator: ${msg}\n`),
      ...(values.imds ? { imds: hostPort(values.imds, '--imds') } : {}),
      ...(values.wireserver ? { wireserver: hostPort(values.wireserver, '--wireserver') } : {}),
      ...(values.hostga ? { hostga: hostPort(values.hostga, '--hostga') } : {}),
      ...(values.control ? { control: hostPort(values.control, '--control') } : {}),
      ...(values['control-socket'] ? { control: { socketPath: values['control-socket'] } } : {}),
      ...(values.profiles ? { profilesDir: values.profiles } : {}),
    };
    vmModel = values['vm-model'];
    // Validate the model before binding anything, so a typo fails fast with the field named.
    if (vmModel) opts.vmModel = JSON.parse(readFileSync(vmModel, 'utf8'));
  } catch (err) {
    process.stderr.write(`gpa emulator: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  let emu: Awaited<ReturnType<typeof startEmulator>>;
  try {
    emu = await startEmulator(opts);
  } catch (err) {
    process.stderr.write(`gpa emulator: ${(err as Error).message}\n`);
    return 2;
  }
  const log = (msg: string) => process.stderr.write(`gpa emulator: ${msg}\n`);
  const watcher = vmModel ? watchVmModelFile(emu, vmModel, log) : null;
  const onHup = () => watcher?.reload();
  process.on('SIGHUP', onHup);
  process.stdout.write(`${JSON.stringify({ addresses: emu.addresses, controlUrl: emu.controlUrl })}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  process.off('SIGHUP', onHup);
  watcher?.close();
  await emu.close();
  return 0;
}
