import type { Endpoint, Mode } from '../keykeeper/index.js';
import * as redirector from '../redirector/index.js';
import type { Log } from './agent-status.js';
import type { AgentConfig } from './config.js';

export const ENDPOINTS: Endpoint[] = ['imds', 'wireserver', 'hostga'];

/**
 * The eBPF redirector's lifecycle in the agent and the redirect rules it holds: exactly the
 * endpoints whose mode is not disabled (one source of truth: the key snapshot), all pointing at the
 * agent's listener. Rules are installed only after the workers have the snapshot's policy.
 */
export class RedirectRules {
  private readonly installed = new Set<Endpoint>();
  private reconciled = false;

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Log,
  ) {}

  /**
   * Attaches the programs (this process exempt) and adopts the rules a previous run left in pinned
   * maps: they stay until the first key snapshot reconciles them, so a restart never opens a window
   * where clients reach the host unsigned. Rules for destinations the config does not name go.
   */
  start(): void {
    const c = this.config;
    const st = redirector.start({
      ...(c.cgroupPath ? { cgroupPath: c.cgroupPath } : {}),
      ...(c.pinDir ? { pinDir: c.pinDir } : {}),
      exemptSelf: true,
    });
    if (st.state !== 'running' && st.state !== 'degraded') {
      throw new Error(`the eBPF redirector did not start (${st.state}): ${st.lastError?.message ?? 'unknown reason'}`);
    }
    for (const r of redirector.listRules()) {
      const ep = ENDPOINTS.find((n) => c.endpoints[n].address === r.dst && c.endpoints[n].port === r.dstPort);
      if (ep) this.installed.add(ep);
      else redirector.removeRule(r.dst, r.dstPort);
    }
  }

  /** Installs the rules of endpoints whose mode needs the agent and removes the others. */
  apply(modes: Record<Endpoint, Mode>, listenPort: number): void {
    for (const ep of ENDPOINTS) {
      const e = this.config.endpoints[ep];
      const want = modes[ep] !== 'disabled';
      // The first snapshot rewrites adopted rules too: the listener port may have changed.
      if (want && (!this.installed.has(ep) || !this.reconciled)) {
        redirector.setRule({
          dst: e.address,
          dstPort: e.port,
          proxy: this.config.listener.address,
          proxyPort: listenPort,
        });
        this.installed.add(ep);
        this.log('info', `redirecting ${ep} (${e.address}:${e.port}) to the agent: mode ${modes[ep]}`);
      } else if (!want && this.installed.has(ep)) {
        redirector.removeRule(e.address, e.port);
        this.installed.delete(ep);
        this.log('info', `no longer redirecting ${ep}: mode disabled`);
      }
    }
    this.reconciled = true;
  }

  /** At shutdown: links mode removes the rules; pinned mode keeps them (a restart is seamless, a crash fails closed). */
  stop(): void {
    if (!this.config.pinDir) {
      for (const ep of this.installed) {
        const e = this.config.endpoints[ep];
        redirector.removeRule(e.address, e.port);
      }
    }
    redirector.stop({ unpin: false });
  }
}
