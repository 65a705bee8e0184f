import { compilePolicyPure } from './compile.js';
import { selfTestSnapshot } from './evil-twin.js';
import type { SelfTestTask } from './selftest-messages.js';
import type { PolicyProblem } from './types.js';

/** Piscina task: compile the same input the control plane compiles, then try every evil twin. */
export default function selfTest(task: SelfTestTask): PolicyProblem[] {
  const { snapshot } = compilePolicyPure(task.input);
  return selfTestSnapshot(snapshot);
}
