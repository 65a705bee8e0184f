/**
 * Provisioning readiness: the agent is provisioned when the redirector is attached, the key keeper
 * has finished its first poll (key latched, or the channel reported disabled), and the listener is
 * bound. cloud-init waits on this through `azure-proxy-agent --status --wait 120`.
 */

export type ProvisionComponent = 'redirector' | 'key' | 'listener';

/** The module names the error message uses (the status.json names, so an operator can cross-read). */
const MODULE_NAMES: Record<ProvisionComponent, string> = {
  redirector: 'ebpfProgramStatus',
  key: 'keyLatchStatus',
  listener: 'proxyListenerStatus',
};

const DEFAULT_WAITING: Record<ProvisionComponent, string> = {
  redirector: 'the eBPF redirector is not attached yet',
  key: 'no answer from the WireServer secure channel yet',
  listener: 'the proxy listener is not bound yet',
};

export interface ProvisionSnapshot {
  /** Unix time in ns when provisioning last completed (or timed out); 0n while in progress. */
  finishedAtNs: bigint;
  /** Empty when every component is ready; otherwise one line per component that is not. */
  errorMessage: string;
  /** True when the secure channel state is neither disabled nor unknown. */
  latched: boolean;
  /** Provisioning gave up waiting (provisionTimeoutSeconds) and is not ready since: finished, with errors. */
  gaveUp: boolean;
  ready: Record<ProvisionComponent, boolean>;
}

/** Current Unix time in nanoseconds (the unit `x-ms-azure-time-tick` carries). */
export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/** Tracks the three readiness flags and when provisioning finished. One instance lives on the main thread. */
export class ProvisioningTracker {
  private readonly ready = { redirector: false, key: false, listener: false };
  private readonly messages: Record<ProvisionComponent, string> = { ...DEFAULT_WAITING };
  private finishedAtNs = 0n;
  private gaveUp = false;
  private secureChannelState = 'unknown';
  private readonly now: () => bigint;

  constructor(opts: { now?: () => bigint } = {}) {
    this.now = opts.now ?? nowNs;
  }

  /**
   * Marks a component ready. When all three are, provisioning is finished *now*: the key keeper calls
   * this after every successful poll, which refreshes the finish time a `--status` query compares with.
   */
  markReady(c: ProvisionComponent): void {
    this.ready[c] = true;
    this.messages[c] = '';
    if (this.allReady()) {
      this.finishedAtNs = this.now();
      this.gaveUp = false;
    }
  }

  /** Marks a component not ready (e.g. the key was dropped) with a message saying what to do. */
  markNotReady(c: ProvisionComponent, message: string): void {
    this.ready[c] = false;
    this.messages[c] = message || DEFAULT_WAITING[c];
    this.finishedAtNs = 0n;
  }

  /** Updates the message shown for a component that is still not ready. */
  setMessage(c: ProvisionComponent, message: string): void {
    if (!this.ready[c]) this.messages[c] = message || DEFAULT_WAITING[c];
  }

  /** Records the key keeper's reported secure-channel state string. */
  setSecureChannelState(state: string): void {
    this.secureChannelState = state;
  }

  /**
   * Provisioning gave up waiting: it counts as finished, with the reasons as the error message, for
   * every query from now until everything is ready (a `--status --wait` started later included).
   */
  timeUp(): void {
    if (this.allReady()) return;
    this.finishedAtNs = this.now();
    this.gaveUp = true;
  }

  snapshot(): ProvisionSnapshot {
    const s = this.secureChannelState.toLowerCase();
    return {
      finishedAtNs: this.finishedAtNs,
      errorMessage: (Object.keys(this.ready) as ProvisionComponent[])
        .filter((c) => !this.ready[c])
        .map((c) => `${MODULE_NAMES[c]} - ${this.messages[c]}`)
        .join('\n'),
      latched: s !== 'disabled' && s !== 'unknown' && s !== '',
      gaveUp: this.gaveUp,
      ready: { ...this.ready },
    };
  }

  private allReady(): boolean {
    return this.ready.redirector && this.ready.key && this.ready.listener;
  }
}
