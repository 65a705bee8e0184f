/**
 * Finds and loads the addon and the BPF object. The addon is context-aware: every worker thread
 * that imports this module gets its own addon instance over one process-wide loaded BPF object.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProbeResult, RedirectorStatus, RedirectRule } from './types.js';

/** What the addon's start() takes (lib/redirector `addonStartOptions` builds it). */
export interface AddonStartOptions {
  objectPath: string;
  cgroupPath: string;
  pinDir: string;
  connMapSize: number;
  exemptPid: number;
  exemptCgroupId: bigint;
}

/** What the addon exports (native/src/addon.cc). Internal to lib/redirector. */
export interface NativeAddon {
  platform: 'linux' | 'windows';
  layoutSizes: { endpoint: number; origin: number; connKey: number };
  probeKernel(): ProbeResult;
  start(opts: AddonStartOptions): RedirectorStatus;
  stop(unpin: boolean): void;
  status(): RedirectorStatus;
  setRule(dst: string, dstPort: number, proxy: string, proxyPort: number): void;
  removeRule(dst: string, dstPort: number): boolean;
  listRules(): RedirectRule[];
  addExemptPid(pid: number): void;
  removeExemptPid(pid: number): boolean;
  lookupConnection(
    peerAddr: string,
    peerPort: number,
    localAddr: string,
    localPort: number,
    consume: boolean,
  ): NativeOrigin | null;
  /** POSIX builds: the same lookup with the accepted socket's 4-tuple read from its fd. */
  lookupSocket?(fd: number, consume: boolean): NativeOrigin | null;
  /** POSIX builds: the same, written into `out` (origin-record.ts layout); 1 found, 0 not. */
  lookupSocketInto?(fd: number, consume: boolean, out: Uint8Array): number;
  stats(): Record<string, bigint>;
  userInfo(uid: number): { name: string; gid: number; groups: { gid: number; name: string | null }[] } | null;
  groupName(gid: number): string | null;
  createReusePortListener(host: string, port: number, backlog: number): number;
  createListener(host: string, port: number, backlog: number, reusePort: boolean): number;
  /** Linux builds: client-socket I/O on the calling thread's loop (native/src/posix/client_io.h). */
  ioListen?: ClientSocketIo['ioListen'];
  /** Linux builds: HMAC-SHA256 on node's own OpenSSL (native/src/posix/hmac_sha256.h). */
  hmacSha256Available?: boolean;
  /** glibc malloc_trim(0); false elsewhere. */
  trimNativeHeap?(): boolean;
  /** Windows builds only. */
  logonSessionInfo?(logonId: bigint): { userName: string; domain: string; sid: string; logonType: number } | null;
}

/** What the addon calls per socket event: (kind, fd, arg) or, for read bytes, (kind, fd, slab, offset, length). */
export type IoEventHandler = (kind: number, fd: number, arg: unknown, offset?: number, length?: number) => void;

/** The addon's client-socket I/O (Linux builds); lib/proxy/native-io.ts drives it. */
export interface ClientSocketIo {
  ioListen(fd: number, onEvent: IoEventHandler): void;
  ioUnlisten(fd: number): boolean;
  ioWrite(fd: number, bytes: Uint8Array): number;
  /** As ioWrite, for a string of code points below 256, one byte each. */
  ioWriteLatin1(fd: number, text: string): number;
  /** An outbound connection to a numeric address on this thread's loop: its fd, or -errno. */
  ioConnect(address: string, port: number, onEvent: IoEventHandler): number;
  ioEnd(fd: number): boolean;
  ioClose(fd: number): boolean;
  ioSetReading(fd: number, on: boolean): boolean;
  ioAddress(fd: number, peer: boolean): [string, number] | null;
  /**
   * This thread's polled sockets: open connections, poll handles made, and handles kept from a
   * closed socket and given to the next one with the same fd number.
   */
  ioStats(): { connections: number; handlesCreated: number; handlesReused: number };
  /** A listening fd; without reusePort the port is its alone. */
  createListener(host: string, port: number, backlog: number, reusePort: boolean): number;
}

export interface NativeOrigin {
  platform: 'linux' | 'win32';
  pid: number;
  tid: number;
  uid: number;
  gid: number;
  comm: string;
  cgroupId: bigint;
  cookie: bigint;
  origDst: string;
  origPort: number;
  family: number;
  viaV4Mapped: boolean;
  exeDev?: bigint;
  exeIno?: bigint;
  logonId?: bigint;
  isAdmin?: boolean;
}

/** The package root: the nearest folder above this file with our package.json. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const pj = path.join(dir, 'package.json');
    if (existsSync(pj) && JSON.parse(readFileSync(pj, 'utf8')).name === 'guest-proxy-agent') return dir;
    dir = path.dirname(dir);
  }
  throw new Error('lib/redirector: cannot find the guest-proxy-agent package root');
}

/** GPA_ADDON_PATH (e.g. the cmake-js build), else the node-gyp build. */
export function addonPath(): string {
  return process.env.GPA_ADDON_PATH || path.join(packageRoot(), 'build', 'Release', 'gpa_native.node');
}

/**
 * The BPF object: GPA_BPF_OBJECT, else `<addon folder>/../bpf/redirect.bpf.o` (both build paths
 * put it there: build/bpf/ and build-cmake/bpf/), else build/bpf/redirect.bpf.o.
 */
export function bpfObjectPath(): string {
  if (process.env.GPA_BPF_OBJECT) return process.env.GPA_BPF_OBJECT;
  const besideAddon = path.join(path.dirname(addonPath()), '..', 'bpf', 'redirect.bpf.o');
  if (existsSync(besideAddon)) return besideAddon;
  return path.join(packageRoot(), 'build', 'bpf', 'redirect.bpf.o');
}

let loaded: NativeAddon | undefined;
let loadError: string | undefined;

/** The addon, or undefined with the reason in addonLoadError(). Loads once per thread. */
export function tryLoadAddon(): NativeAddon | undefined {
  if (loaded || loadError) return loaded;
  const p = addonPath();
  try {
    loaded = createRequire(import.meta.url)(p) as NativeAddon;
  } catch (err) {
    loadError = `cannot load the addon ${p}: ${(err as Error).message} (build it with: npm run build)`;
  }
  return loaded;
}

export function addonLoadError(): string | undefined {
  tryLoadAddon();
  return loadError;
}
