// What the harness knows about each thing it measures.
export type TargetName = 'direct' | 'nginx' | 'agent';

export interface Target {
  name: TargetName;
  /** Origin the load generator connects to, e.g. http://127.0.0.1:41234. */
  base: string;
  /** Every process whose CPU and memory count as this target's (nginx: master and workers). */
  pids(): number[];
  mainPid: number;
  /** cgroup.procs the client must join so its connects are redirected (agent only). */
  clientCgroupProcs?: string;
  stop(): Promise<void>;
}
