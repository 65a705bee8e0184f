import { parentPort, workerData } from 'node:worker_threads';
import { AuditBatcher, transferList } from '../audit/index.js';
import { ClaimsResolver, loopbackPeerUid } from '../identity/index.js';
import { answerMetricsRequests, createWorkerMetrics } from '../metrics/index.js';
import { authorize, compilePolicy, compilePolicyPure, type PolicySnapshot } from '../policy/index.js';
import {
  DEFAULT_BODY_LIMITS,
  DEFAULT_HEAD_LIMITS,
  nativeIoFor,
  type ProxyContext,
  ProxyListener,
  type ProxySnapshot,
} from '../proxy/index.js';
import {
  clientSocketIo,
  groupName,
  lookupConnection,
  lookupSocket,
  nativeHmac,
  processSnapshotReader,
  socketLookupSupported,
  userInfo,
} from '../redirector/index.js';
import { SigningKey } from '../signing/index.js';
import { scheduleHeapTrim } from './heap-trim.js';
import {
  type AuditBufferMessage,
  isMessage,
  type MainToWorker,
  type SnapshotMessage,
  type StateMessage,
  type WorkerInit,
  type WorkerToMain,
} from './messages.js';

/**
 * A data-plane worker thread: owns one SO_REUSEPORT listener on the agent port and handles each
 * connection from accept to response with no cross-thread hop. It compiles the policy itself from
 * the compile input the main thread sends (deterministic, so every worker decides alike) and swaps
 * its snapshot atomically; requests in flight keep the snapshot they started with.
 */
const port = parentPort!;
const init = workerData as WorkerInit;
const post = (m: WorkerToMain) => port.postMessage(m);

const resolver = new ClaimsResolver({
  userInfo: (uid) => userInfo(uid),
  groupName: (gid) => groupName(gid),
  snapshot: processSnapshotReader() ?? undefined,
});
const batcher = new AuditBatcher((batch) =>
  port.postMessage({ type: 'gpa:audit', batch } satisfies WorkerToMain, transferList(batch)),
);
const metrics = init.metrics ? createWorkerMetrics(init.index) : null;
if (metrics !== null) answerMetricsRequests(port, () => metrics.getMetricsAsJSON());

let policy: PolicySnapshot | null = null;

/** Until the first snapshot arrives nothing is forwarded: default-closed. */
const NOT_READY: ProxySnapshot = {
  epoch: 0,
  decide: (req) => ({
    outcome: 'deny',
    forward: false,
    status: 503,
    code: 'no_policy',
    endpoint: req.endpoint,
    mode: 'enforce',
    ruleId: null,
    signatureExempt: false,
    policyVersion: 0,
  }),
  key: null,
  hostClockOffsetMs: 0,
  provision: {
    finishedAtNs: 0n,
    gaveUp: false,
    errorMessage: 'the agent is starting',
    latched: false,
    ready: { redirector: false, key: false, listener: false },
  },
  aggregatedStatus: '{}',
};

const ctx: ProxyContext = {
  snapshot: NOT_READY,
  routes: init.routes,
  lookup: init.redirect ? (peer, local) => lookupConnection(peer, local, { consume: true }) : () => null,
  ...(init.redirect && socketLookupSupported()
    ? { lookupSocket: (fd: number) => lookupSocket(fd, { consume: true }) }
    : {}),
  claims: (o) => resolver.resolve(o),
  directPeerUid: (peer, local) => loopbackPeerUid(peer, local),
  audit: (r) => batcher.record(r),
  onRequestDone: metrics !== null ? metrics.onRequestDone : null,
  headLimits: DEFAULT_HEAD_LIMITS,
  bodyLimits: DEFAULT_BODY_LIMITS,
  timeouts: init.timeouts,
  notifyKeyKeeper: () => post({ type: 'gpa:notify-keykeeper' }),
  draining: false,
};
// Client sockets through the addon where it can (Linux): no net.Socket per connection.
const socketIo = init.clientSockets === 'native' ? clientSocketIo() : null;
/** Requests are signed by the addon where it has HMAC-SHA256 (Linux), else by node:crypto. */
const hmac = nativeHmac();
const listener = new ProxyListener(ctx, {
  io: socketIo !== null ? nativeIoFor(socketIo) : null,
  limits: init.connections,
});
/**
 * Until the first snapshot, connections are accepted (and attributed) but not served, for at most
 * this long: right after a restart a client waits a moment instead of getting 503 `no_policy`.
 * The main thread publishes the first snapshot after the key keeper's first answer; if that takes
 * longer, the held requests are answered by the deny-all snapshot (503), as before.
 */
const FIRST_SNAPSHOT_HOLD_MS = 5000;
listener.hold(FIRST_SNAPSHOT_HOLD_MS);

function applySnapshot(m: SnapshotMessage): void {
  if (policy === null) scheduleHeapTrim();
  const input = { ...m.policy, ...(policy !== null ? { previous: policy } : {}) };
  // Local rule files are read here only when the rule id asks for them (compilePolicy does that).
  policy = (input.localRulesDir ? compilePolicy(input) : compilePolicyPure(input)).snapshot;
  const compiled = policy;
  listener.setSnapshot({
    epoch: m.epoch,
    decide: (req, caller) => authorize(compiled, req, caller),
    key: m.key !== null ? { guid: m.key.guid, signingKey: new SigningKey(m.key.bytes, hmac) } : null,
    hostClockOffsetMs: m.hostClockOffsetMs,
    provision: m.provision,
    aggregatedStatus: m.aggregatedStatus,
  });
  listener.release();
  post({ type: 'gpa:snapshot-applied', index: init.index, epoch: m.epoch, policyVersion: compiled.version });
}

function applyState(m: StateMessage): void {
  const s = ctx.snapshot;
  listener.setSnapshot({
    ...s,
    hostClockOffsetMs: m.hostClockOffsetMs ?? s.hostClockOffsetMs,
    provision: m.provision ?? s.provision,
    aggregatedStatus: m.aggregatedStatus ?? s.aggregatedStatus,
  });
}

port.on('message', (m: MainToWorker) => {
  try {
    if (isMessage<SnapshotMessage>(m, 'gpa:snapshot')) applySnapshot(m);
    else if (isMessage<StateMessage>(m, 'gpa:state')) applyState(m);
    else if (isMessage<AuditBufferMessage>(m, 'gpa:audit-buffer')) batcher.recycle(m.buffer);
    else if (m?.type === 'gpa:drain') {
      void listener.close(m.drainMs).then(() => {
        batcher.flush();
        metrics?.close();
        post({ type: 'gpa:drained', index: init.index });
        port.close();
      });
    }
  } catch (err) {
    // A snapshot that cannot be applied keeps the previous one (never a half-applied state).
    process.stderr.write(`gpa worker ${init.index}: ${(err as Error).stack ?? err}\n`);
  }
});

listener.listen(init.listen).then(
  (a) => post({ type: 'gpa:listening', index: init.index, address: a.address, port: a.port }),
  (err: Error) => post({ type: 'gpa:listen-failed', index: init.index, message: err.message }),
);
