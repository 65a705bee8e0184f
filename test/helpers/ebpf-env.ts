/**
 * Skip-or-fail gate for tests that need real eBPF. Without CI=true / REQUIRE_EBPF=1 a machine that
 * cannot run eBPF skips with the reason; with either set, the same condition fails the test.
 *
 *   const gate = ebpfGate();
 *   describe('x', { skip: gate.skip }, () => { before(() => gate.check()); ... });
 */
import { probe } from '../../lib/redirector/index.js';

export interface EbpfGate {
  /** The machine can load and attach our programs. */
  available: boolean;
  /** Why not, or null. */
  reason: string | null;
  /** CI=true or REQUIRE_EBPF=1: unavailability is a failure. */
  required: boolean;
  /** Value for node:test's `skip` option: the reason when skipping is allowed, else false. */
  skip: string | false;
  /** Throws (failing the test) when eBPF is unavailable; call it in `before` or at a test's start. */
  check(): void;
}

/** True when eBPF tests must run (CI=true or REQUIRE_EBPF=1). */
export function ebpfRequired(): boolean {
  return process.env.CI === 'true' || process.env.CI === '1' || process.env.REQUIRE_EBPF === '1';
}

let cached: EbpfGate | undefined;

export function ebpfGate(): EbpfGate {
  if (cached) return cached;
  const p = probe();
  const reason = p.supported ? null : p.reasons.join('; ');
  const required = ebpfRequired();
  cached = {
    available: p.supported,
    reason,
    required,
    skip: reason && !required ? `eBPF unavailable: ${reason}` : false,
    check() {
      if (reason) throw new Error(`eBPF is required here (CI=true or REQUIRE_EBPF=1) but unavailable: ${reason}`);
    },
  };
  return cached;
}
