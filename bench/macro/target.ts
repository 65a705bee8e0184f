// What the harness knows about each thing it measures.
export type TargetName = 'direct' | 'nginx' | 'agent';

export interface Target {
  name: TargetName;
  /** Origin the load generator connects to, e.g. http://127.0.0.1:41234. */
  base: string;
  /** Every process whose CPU and memory count as this target's (nginx: master and workers). */
  pids(): number[];
  mainPid: number;
  /**
   * The host emulator process this target's requests end at (direct: itself). Its CPU per request
   * and its busiest thread's share of a core are recorded: when that thread is near 100%, the host
   * and not the proxy limits throughput.
   */
  hostPid?: number;
  /** cgroup.procs the client must join so its connects are redirected (agent only). */
  clientCgroupProcs?: string;
  stop(): Promise<void>;
}
