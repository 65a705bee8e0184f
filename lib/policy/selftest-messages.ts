import type { CompileInput } from './compile.js';

/** The one message the main thread sends the self-test worker: structured-clone-safe compile input. */
export interface SelfTestTask {
  input: Omit<CompileInput, 'previous' | 'localRulesDir'>;
}
