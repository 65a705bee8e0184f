import { Buffer } from 'node:buffer';
import type { LinuxConnOrigin } from './types.js';

/**
 * The fixed-layout record the addon's `lookupSocketInto` writes (native/src/addon.cc; keep the two
 * in step), little-endian as the hosts this runs on:
 *
 *   0 cgroupId u64 · 8 cookie u64 · 16 exeDev u64 · 24 exeIno u64 · 32 startTimeNs u64 (0 unknown)
 *   40 uid u32 · 44 gid u32 · 48 pid u32 · 52 tid u32 · 56 origPort u16 · 58 family u8
 *   59 flags u8 (1 viaV4Mapped, 2 exe id known) · 60 comm length u8 · 61 address length u8
 *   64 comm (16 bytes) · 80 origDst as text (48 bytes)
 */
export const ORIGIN_RECORD_BYTES = 128;

const FLAG_V4_MAPPED = 1;
const FLAG_EXE_ID = 2;

/** One record buffer per thread (each worker has its own module instance), reused per lookup. */
export class OriginRecord {
  readonly bytes = Buffer.alloc(ORIGIN_RECORD_BYTES);
  private readonly view = new DataView(this.bytes.buffer, this.bytes.byteOffset, ORIGIN_RECORD_BYTES);

  /** The record as the object lookupConnection returns (same fields, same optional ones). */
  decode(): LinuxConnOrigin {
    const v = this.view;
    const b = this.bytes;
    const flags = b[59]!;
    const startTimeNs = v.getBigUint64(32, true);
    const o: LinuxConnOrigin = {
      platform: 'linux',
      uid: v.getUint32(40, true),
      gid: v.getUint32(44, true),
      pid: v.getUint32(48, true),
      tid: v.getUint32(52, true),
      comm: b.toString('utf8', 64, 64 + b[60]!),
      cgroupId: v.getBigUint64(0, true),
      cookie: v.getBigUint64(8, true),
      origDst: b.toString('latin1', 80, 80 + b[61]!),
      origPort: v.getUint16(56, true),
      family: b[58] === 6 ? 6 : 4,
      viaV4Mapped: (flags & FLAG_V4_MAPPED) !== 0,
    };
    if ((flags & FLAG_EXE_ID) !== 0) {
      o.exeDev = v.getBigUint64(16, true);
      o.exeIno = v.getBigUint64(24, true);
    }
    if (startTimeNs !== 0n) o.startTimeNs = startTimeNs;
    return o;
  }
}
