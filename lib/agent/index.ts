// Public surface of lib/agent: the agent process (config, start-up order, workers, shutdown).
export { Agent, connectionLimits, type Log } from './agent.js';
export {
  type AgentConfig,
  DEFAULT_CONFIG_FILE,
  type EndpointConfig,
  isAbsolutePath,
  loadConfig,
  validateConfig,
} from './config.js';
export type { MainToWorker, SnapshotMessage, StateMessage, WorkerInit, WorkerToMain } from './messages.js';
export { nodeHasReusePort, WORKER_HEAP_ENV, WORKER_HEAP_LIMITS, WorkerSet, workerResourceLimits } from './workers.js';
