import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { GUID_PATTERN } from './status-parse.js';
import type { LatchedKey } from './types.js';

const MAX_KEY_FILE = 4096;
const HEX64 = /^[0-9a-fA-F]{64}$/;

/** The key JSON of spec section 2, as the host sends it and as it is stored on disk. */
export interface KeyRecord {
  authorizationScheme: 'Azure-HMAC-SHA256';
  incarnationId: number | null;
  guid: string;
  issued: string;
  key: string;
}

/** Validates key JSON from the host or from disk; throws a message naming the bad field. */
export function parseKeyRecord(text: string, source: string): KeyRecord {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`${source}: key is not valid JSON (${(err as Error).message})`);
  }
  const k = doc as Record<string, unknown>;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new Error(`${source}: key must be a JSON object`);
  if (k.authorizationScheme !== 'Azure-HMAC-SHA256')
    throw new Error(`${source}: authorizationScheme must be Azure-HMAC-SHA256`);
  if (typeof k.guid !== 'string' || !GUID_PATTERN.test(k.guid)) throw new Error(`${source}: guid is not a GUID`);
  if (typeof k.key !== 'string' || !HEX64.test(k.key)) throw new Error(`${source}: key must be 64 hex characters`);
  const inc = k.incarnationId;
  if (inc !== null && inc !== undefined && !(Number.isSafeInteger(inc) && (inc as number) >= 0)) {
    throw new Error(`${source}: incarnationId must be a non-negative integer`);
  }
  return {
    authorizationScheme: 'Azure-HMAC-SHA256',
    incarnationId: (inc as number | null | undefined) ?? null,
    guid: k.guid,
    issued: typeof k.issued === 'string' ? k.issued : '',
    key: k.key,
  };
}

export function toLatchedKey(r: KeyRecord): LatchedKey {
  return { guid: r.guid, incarnationId: r.incarnationId, bytes: Buffer.from(r.key, 'hex') };
}

/** Key files `<guid>.key` (0600) in a folder owned by the agent's user (root) with mode 0700. */
export class KeyStore {
  constructor(
    readonly folder: string,
    /** Told why a stored key file was passed over (unusable content), so the log says it. */
    private readonly warn: (message: string) => void = () => {},
  ) {}

  /** Creates or tightens the folder; refuses one owned by another user. */
  ensureFolder(): void {
    mkdirSync(this.folder, { recursive: true, mode: 0o700 });
    const st = lstatSync(this.folder);
    if (!st.isDirectory())
      throw new Error(`key folder ${this.folder} is not a directory; remove it or choose another latchKeyFolder`);
    const uid = process.getuid?.() ?? st.uid;
    if (st.uid !== uid) {
      throw new Error(
        `key folder ${this.folder} is owned by uid ${st.uid}, not ${uid}; chown it to root or choose another latchKeyFolder`,
      );
    }
    if ((st.mode & 0o777) !== 0o700) chmodSync(this.folder, 0o700);
  }

  private file(guid: string): string {
    // The GUID becomes a file name: never let path characters through.
    if (!GUID_PATTERN.test(guid)) throw new Error(`refusing key GUID ${JSON.stringify(guid.slice(0, 80))}: not a GUID`);
    return path.join(this.folder, `${guid.toLowerCase()}.key`);
  }

  /** The stored key for a GUID, or null when there is none (or it is unusable). */
  read(guid: string): KeyRecord | null {
    const file = this.file(guid);
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(file);
    } catch {
      return null;
    }
    if (!st.isFile() || st.size > MAX_KEY_FILE) {
      this.warn(`${file} is not a regular key file of at most ${MAX_KEY_FILE} bytes; not using it`);
      return null;
    }
    let rec: KeyRecord;
    try {
      rec = parseKeyRecord(readFileSync(file, 'utf8'), file);
    } catch (err) {
      // A damaged file (a torn disk, an edit by hand) is as good as none: the keeper acquires
      // again, and the new key is written over it.
      this.warn(`${(err as Error).message}; not using it`);
      return null;
    }
    if (rec.guid.toLowerCase() !== guid.toLowerCase()) {
      this.warn(`${file} holds key ${rec.guid}, not ${guid}; not using it`);
      return null;
    }
    return rec;
  }

  /** Writes atomically: 0600 temp file, fsync, rename over `<guid>.key`. */
  write(rec: KeyRecord): void {
    this.ensureFolder();
    const file = this.file(rec.guid);
    const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, JSON.stringify(rec));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
  }

  remove(guid: string): void {
    try {
      unlinkSync(this.file(guid));
    } catch {
      // already gone
    }
  }

  /** Deletes key files other than the ones to keep (current and previous) and stray temp files. */
  prune(current: string, previous: string | null): void {
    let names: string[];
    try {
      names = readdirSync(this.folder);
    } catch {
      return;
    }
    const keep = new Set([current.toLowerCase(), previous?.toLowerCase()]);
    const others = names
      .filter((n) => n.endsWith('.key') && !keep.has(n.slice(0, -4).toLowerCase()))
      .map((n) => ({ n, mtime: statSync(path.join(this.folder, n)).mtimeMs }))
      .sort((a, b) => b.mtime - a.mtime);
    // Without a known previous key (fresh start), keep the newest other file as "previous".
    if (previous === null) others.shift();
    const doomed = [...others.map((o) => o.n), ...names.filter((n) => /\.key\.tmp-\d+-[0-9a-f]+$/.test(n))];
    for (const n of doomed) {
      try {
        unlinkSync(path.join(this.folder, n));
      } catch {
        // raced with another cleanup
      }
    }
  }
}
