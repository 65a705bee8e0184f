import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { request } from '../node-http.js';
import type { OperatorConfig } from './operator-config.js';

export type Level = 'green' | 'yellow' | 'red';
export interface CheckResult {
  check: string;
  level: Level;
  message: string;
}

/** Our programs as bpftool names them, by attach type. */
const OUR_PROGRAMS: Record<string, string> = {
  cgroup_inet4_connect: 'gpa_connect4',
  cgroup_inet6_connect: 'gpa_connect6',
  sock_ops: 'gpa_sockops',
  cgroup_inet4_bind: 'gpa_bind4',
  cgroup_inet6_bind: 'gpa_bind6',
};

/** bpftool versions differ: 'sock_ops' (v5-v6) vs 'cgroup_sock_ops' (v7). */
const attachType = (t: string | undefined) => (t === 'cgroup_sock_ops' ? 'sock_ops' : t);

/** Runs a read-only command with a hard timeout; resolves to stdout or null. */
function run(cmd: string, args: string[], timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout) => resolve(err ? null : stdout));
  });
}

/** Sockets in LISTEN state on `port` from /proc/net/tcp{,6}, as "addr" strings. */
export function listeningAddresses(port: number, procNet = '/proc/net'): string[] {
  const out: string[] = [];
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const f of ['tcp', 'tcp6']) {
    let text = '';
    try {
      text = readFileSync(path.join(procNet, f), 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] !== '0A' || !cols[1]?.endsWith(`:${hexPort}`)) continue;
      out.push(decodeProcAddress(cols[1].split(':')[0]!));
    }
  }
  return out;
}

function decodeProcAddress(hex: string): string {
  if (hex.length === 8) {
    const b = Buffer.from(hex, 'hex');
    return `${b[3]}.${b[2]}.${b[1]}.${b[0]}`;
  }
  // IPv6: four little-endian 32-bit words.
  const words = [0, 8, 16, 24].map((i) =>
    Buffer.from(hex.slice(i, i + 8), 'hex')
      .reverse()
      .toString('hex'),
  );
  const joined = words.join('');
  if (joined === `${'0'.repeat(31)}1`) return '::1';
  if (joined.startsWith('00000000000000000000ffff')) {
    const b = Buffer.from(joined.slice(24), 'hex');
    return `::ffff:${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  }
  return joined.match(/.{4}/g)!.join(':');
}

const isLoopback = (a: string) => a.startsWith('127.') || a === '::1' || a.startsWith('::ffff:127.');

/** Listener (or metrics) sockets must exist and be loopback only (scenario 1). */
export function checkLoopbackOnly(name: string, port: number, required: boolean, procNet?: string): CheckResult {
  const addrs = listeningAddresses(port, procNet);
  if (addrs.length === 0) {
    return {
      check: name,
      level: required ? 'red' : 'yellow',
      message: `nothing listens on port ${port}${required ? "; is the agent running? 'systemctl status azure-proxy-agent'" : ''}`,
    };
  }
  const exposed = addrs.filter((a) => !isLoopback(a));
  if (exposed.length) {
    return {
      check: name,
      level: 'red',
      message: `port ${port} is bound to non-loopback ${exposed.join(', ')}: anyone on the network can reach it; set a 127.x address in the config`,
    };
  }
  return {
    check: name,
    level: 'green',
    message: `port ${port} bound to loopback only (${[...new Set(addrs)].join(', ')})`,
  };
}

/** Key folder 0700 and key files 0600, owned by root (checked as bit masks, scenario 26). */
export function checkKeyFolder(dir: string): CheckResult {
  const check = 'key folder';
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(dir);
  } catch {
    return { check, level: 'yellow', message: `${dir} does not exist yet (created when the first key is latched)` };
  }
  const bad: string[] = [];
  if ((st.mode & 0o077) !== 0) bad.push(`${dir} is mode ${(st.mode & 0o777).toString(8)} (want 700)`);
  if (st.uid !== 0) bad.push(`${dir} is owned by uid ${st.uid} (want root)`);
  for (const f of readdirSync(dir)) {
    const fst = statSync(path.join(dir, f));
    if (fst.isFile() && (fst.mode & 0o077) !== 0) bad.push(`${f} is mode ${(fst.mode & 0o777).toString(8)} (want 600)`);
    if (fst.uid !== 0) bad.push(`${f} is owned by uid ${fst.uid} (want root)`);
  }
  if (bad.length)
    return {
      check,
      level: 'red',
      message: `${bad.join('; ')}. Fix: chmod 700 ${dir} && chmod 600 ${dir}/* && chown -R root: ${dir}`,
    };
  return { check, level: 'green', message: `${dir} is 0700 root; key files 0600` };
}

/** Config readable, valid JSON, known value types. */
export function checkConfig(cfg: OperatorConfig): CheckResult {
  if (cfg.problem)
    return { check: 'config', level: 'red', message: `${cfg.problem}; the agent will not start with it` };
  if (!cfg.source) return { check: 'config', level: 'yellow', message: 'no config file; the agent runs on defaults' };
  return {
    check: 'config',
    level: 'green',
    message: `${cfg.source} parses; listener ${cfg.listenerAddress}:${cfg.listenerPort}`,
  };
}

/** Our three programs attached to the cgroup, and nobody else's on the same hooks. */
export async function checkBpfAttached(cgroupPath: string, timeoutMs: number): Promise<CheckResult[]> {
  const out = await run('bpftool', ['-j', 'cgroup', 'show', cgroupPath], timeoutMs);
  if (out === null)
    return [
      {
        check: 'eBPF attached',
        level: 'yellow',
        message: `cannot list programs on ${cgroupPath} (bpftool missing or not root)`,
      },
    ];
  let progs: { attach_type?: string; name?: string; id?: number }[] = [];
  try {
    progs = (JSON.parse(out.trim() || '[]') as typeof progs).map((p) => ({
      ...p,
      attach_type: attachType(p.attach_type),
    }));
  } catch {
    return [{ check: 'eBPF attached', level: 'yellow', message: 'bpftool output not understood' }];
  }
  const results: CheckResult[] = [];
  const missing = Object.entries(OUR_PROGRAMS).filter(
    ([t, n]) => !progs.some((p) => p.attach_type === t && p.name === n),
  );
  const dupes = Object.entries(OUR_PROGRAMS).filter(
    ([t, n]) => progs.filter((p) => p.attach_type === t && p.name === n).length > 1,
  );
  results.push(
    missing.length === 0 && dupes.length === 0
      ? {
          check: 'eBPF attached',
          level: 'green',
          message: `connect4, connect6, sockops, bind4 and bind6 attached on ${cgroupPath}, one of each`,
        }
      : missing.length
        ? {
            check: 'eBPF attached',
            level: 'red',
            message: `missing on ${cgroupPath}: ${missing.map(([, n]) => n).join(', ')}; metadata requests are not intercepted. Restart the agent; see status.json ebpfProgramStatus`,
          }
        : {
            check: 'eBPF attached',
            level: 'red',
            message: `more than one copy attached: ${dupes.map(([, n]) => n).join(', ')}; stop every agent instance, 'gpa uninstall' the pins, start one`,
          },
  );
  const foreign = progs.filter(
    (p) => p.attach_type && p.attach_type in OUR_PROGRAMS && p.name !== OUR_PROGRAMS[p.attach_type],
  );
  results.push(
    foreign.length
      ? {
          check: 'foreign programs',
          level: 'yellow',
          message: `other programs on the same hooks: ${foreign.map((p) => `${p.name ?? '?'}#${p.id} (${p.attach_type})`).join(', ')}; they may rewrite connects before or after ours`,
        }
      : {
          check: 'foreign programs',
          level: 'green',
          message: 'no other programs on connect4/connect6/sockops/bind4/bind6',
        },
  );
  return results;
}

/** Pins present exactly when the agent runs pinned; pins with no agent mean clients are refused. */
export function checkPins(pinDir: string | null, agentUp: boolean): CheckResult {
  if (pinDir === null)
    return {
      check: 'pins',
      level: 'yellow',
      message:
        'pinning is off ("pinDir": null): when the agent stops or crashes, the redirect goes with it and callers reach the metadata services directly (fail-open)',
    };
  const links = existsSync(pinDir) ? readdirSync(pinDir).filter((f) => f.startsWith('link_')) : [];
  if (links.length && !agentUp) {
    return {
      check: 'pins',
      level: 'red',
      message: `${links.length} pinned link(s) in ${pinDir} but the agent is not answering: metadata connections are refused (fail-closed). Start the agent, or 'gpa uninstall' to remove the redirect`,
    };
  }
  if (!links.length)
    return {
      check: 'pins',
      level: agentUp ? 'yellow' : 'green',
      message: agentUp
        ? `no pinned links in ${pinDir}: a crash would detach the redirect (fail-open); set "pinDir"`
        : `no pinned links in ${pinDir}`,
    };
  return { check: 'pins', level: 'green', message: `${links.length} pinned link(s) in ${pinDir}` };
}

/** GET a loopback URL with a short timeout. */
export function httpGet(
  host: string,
  port: number,
  p: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<{ status: number; body: string } | null> {
  return new Promise((resolve) => {
    const req = request({ host, port, path: p, headers, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (body.length < 4 * 1024 * 1024) body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
    req.end();
  });
}

/** Clock skew from the agent's metrics (the key keeper measures it from x-ms-azure-host-date). */
export function checkClockSkew(metricsText: string | null): CheckResult {
  const m = metricsText && /^gpa_host_clock_offset_seconds (\S+)$/m.exec(metricsText);
  if (!m)
    return {
      check: 'clock skew',
      level: 'yellow',
      message: 'unknown (agent metrics not reachable or no host date seen yet)',
    };
  const s = Math.abs(Number(m[1]));
  if (s > 300)
    return {
      check: 'clock skew',
      level: 'red',
      message: `local clock is ${s.toFixed(0)} s off the host's; fix time sync (chrony/systemd-timesyncd)`,
    };
  if (s > 30)
    return { check: 'clock skew', level: 'yellow', message: `local clock is ${s.toFixed(0)} s off the host's` };
  return { check: 'clock skew', level: 'green', message: `within ${s.toFixed(1)} s of the host` };
}
