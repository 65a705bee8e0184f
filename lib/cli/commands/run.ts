import { Agent, DEFAULT_CONFIG_FILE, loadConfig } from '../../agent/index.js';

export const summary = 'run the agent in the foreground (gpa run --config FILE)';

/** `fileLogLevel`: a line is written when its level is at or above the configured one. */
const LEVELS: Record<string, number | undefined> = { error: 0, warn: 1, info: 2, debug: 3 };
const INFO = 2;

/** `gpa run [--config FILE]`: starts the agent and runs until SIGTERM/SIGINT, then drains and exits. */
export async function run(argv: string[]): Promise<number> {
  let file = DEFAULT_CONFIG_FILE;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config' || a === '-c') file = argv[++i] ?? '';
    else if (a.startsWith('--config=')) file = a.slice(9);
    else if (a === '--help' || a === '-h') {
      process.stdout.write(`usage: gpa run [--config FILE]   (default ${DEFAULT_CONFIG_FILE})\n`);
      return 0;
    } else {
      process.stderr.write(`gpa run: unknown option '${a}'; usage: gpa run [--config FILE]\n`);
      return 2;
    }
  }
  let threshold = INFO;
  const log = (level: string, message: string) => {
    if ((LEVELS[level] ?? INFO) <= threshold) process.stderr.write(`${new Date().toISOString()} ${level} ${message}\n`);
  };
  let agent: Agent;
  try {
    const { config, warnings } = loadConfig(file, { allowMissing: file === DEFAULT_CONFIG_FILE });
    threshold = LEVELS[config.fileLogLevel] ?? INFO;
    for (const w of warnings) log('warn', w);
    agent = new Agent(config, log);
  } catch (err) {
    process.stderr.write(`gpa run: ${(err as Error).message}\n`);
    return 2;
  }
  let stopping: Promise<void> | null = null;
  let stopped: () => void = () => {};
  const untilStopped = new Promise<void>((resolve) => (stopped = resolve));
  const stop = (sig: string) => {
    if (stopping) return;
    log('info', `${sig}: draining connections, then stopping`);
    stopping = agent
      .stop()
      .catch((err: Error) => {
        log('error', `stop: ${err.message}`);
      })
      .then(() => stopped());
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    await agent.start();
  } catch (err) {
    log('error', `start failed: ${(err as Error).message}`);
    await agent.stop().catch(() => {});
    return 1;
  }
  log(
    'info',
    `listening on ${agent.config.listener.address}:${agent.listenPort} with ${agent.config.workers} worker(s); audit log ${agent.auditFile}`,
  );
  // Machine-readable line for tests and supervisors.
  process.stdout.write(
    `${JSON.stringify({ event: 'ready', port: agent.listenPort, metricsPort: agent.metricsServer?.port ?? null })}\n`,
  );
  // Wait for a signal without polling: an idle agent is not woken by its own timers. The interval
  // (the longest Node allows, ~24.8 days) only keeps the process alive should every other handle go.
  const keepAlive = setInterval(() => {}, 2 ** 31 - 1);
  await untilStopped;
  clearInterval(keepAlive);
  log('info', 'stopped');
  return 0;
}
