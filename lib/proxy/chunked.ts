import { Buffer } from 'node:buffer';

enum S {
  Size,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  TrailerName,
  TrailerValue,
  TrailerLf,
  FinalLf,
  Done,
}

// RFC 9110 tchar: ALPHA / DIGIT / "!#$%&'*+-.^_`|~" (a trailer field's name).
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
  TCHAR[c.charCodeAt(0)] = 1;

/** The whole trailer section (every field line) is at most this many bytes. */
const MAX_TRAILER_BYTES = 8192;

const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX['0123456789abcdef'.charCodeAt(i)] = i;
  HEX['0123456789ABCDEF'.charCodeAt(i)] = i;
}

/**
 * A streaming, strict decoder of chunked transfer coding (RFC 9112 §7.1). It is fed raw bytes as
 * they arrive and reports data slices, so it can both decode a request body and find the end of a
 * chunked response that is passed through unchanged. Bad framing (non-hex size, size over 8 hex
 * digits, missing CRLF, bare LF, a trailer line that is not `token ":" visible-value CRLF`) is an
 * error, never a guess: guessing is what smuggling feeds on (a lenient upstream that ends the
 * trailer section at a bare LF would read what follows as a second request).
 */
export class ChunkedDecoder {
  private state = S.Size;
  private remaining = 0;
  private digits = 0;
  private lineBytes = 0;
  /** Decoded payload bytes so far. */
  total = 0;
  error: string | null = null;

  get done(): boolean {
    return this.state === S.Done;
  }

  /**
   * Consumes `buf[start, end)`; calls `onData` for each payload slice. Returns the offset where it
   * stopped: `end`, or the byte just past the final CRLF once done. On bad framing sets `error`.
   */
  feed(buf: Buffer, start: number, end: number, onData?: (b: Buffer, s: number, e: number) => void): number {
    let p = start;
    while (p < end) {
      const c = buf[p]!;
      switch (this.state) {
        case S.Size: {
          const h = HEX[c]!;
          if (h >= 0) {
            if (++this.digits > 8) return this.fail('chunk size too large');
            this.remaining = this.remaining * 16 + h;
            p++;
            continue;
          }
          if (this.digits === 0) return this.fail('invalid chunk size');
          if (c === 59) this.state = S.Ext;
          else if (c === 13) this.state = S.SizeLf;
          else return this.fail('invalid chunk size');
          p++;
          continue;
        }
        case S.Ext:
          // Extensions are ignored but must stay on one line of visible ASCII.
          if (c === 13) this.state = S.SizeLf;
          else if ((c < 0x20 && c !== 9) || c > 0x7e) return this.fail('invalid chunk extension');
          else if (++this.lineBytes > 1024) return this.fail('chunk extension too long');
          p++;
          continue;
        case S.SizeLf:
          if (c !== 10) return this.fail('bare CR in chunk size line');
          p++;
          this.digits = 0;
          this.lineBytes = 0;
          this.state = this.remaining === 0 ? S.TrailerStart : S.Data;
          continue;
        case S.Data: {
          const n = Math.min(this.remaining, end - p);
          onData?.(buf, p, p + n);
          this.total += n;
          this.remaining -= n;
          p += n;
          if (this.remaining === 0) this.state = S.DataCr;
          continue;
        }
        case S.DataCr:
          if (c !== 13) return this.fail('chunk data longer than its size');
          this.state = S.DataLf;
          p++;
          continue;
        case S.DataLf:
          if (c !== 10) return this.fail('bare CR after chunk data');
          this.state = S.Size;
          p++;
          continue;
        case S.TrailerStart:
          if (c === 13) this.state = S.FinalLf;
          else if (TCHAR[c] === 1) this.state = S.TrailerName;
          else return this.fail('invalid trailer');
          if (++this.lineBytes > MAX_TRAILER_BYTES) return this.fail('trailer too long');
          p++;
          continue;
        case S.TrailerName:
          if (c === 58) this.state = S.TrailerValue;
          else if (TCHAR[c] !== 1) return this.fail('invalid trailer name');
          if (++this.lineBytes > MAX_TRAILER_BYTES) return this.fail('trailer too long');
          p++;
          continue;
        case S.TrailerValue:
          // Visible ASCII, SP and HTAB only: a bare LF or any other control is an error.
          if (c === 13) this.state = S.TrailerLf;
          else if ((c < 0x20 && c !== 9) || c > 0x7e) return this.fail('invalid trailer');
          if (++this.lineBytes > MAX_TRAILER_BYTES) return this.fail('trailer too long');
          p++;
          continue;
        case S.TrailerLf:
          if (c !== 10) return this.fail('bare CR in trailer');
          this.state = S.TrailerStart;
          p++;
          continue;
        case S.FinalLf:
          if (c !== 10) return this.fail('bare CR at end of chunked body');
          this.state = S.Done;
          return p + 1;
        case S.Done:
          return p;
      }
    }
    return p;
  }

  private fail(reason: string): number {
    this.error = reason;
    return -1;
  }
}

const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

/**
 * `parts` (`n` bytes in all) framed as one chunk, followed by the last chunk (no trailers) when
 * `last`: what a streamed chunked upload sends upstream instead of the client's own bytes, so its
 * chunk extensions and trailer fields never reach the host. Null when there is nothing to send.
 */
export function frameChunk(parts: Buffer[], n: number, last: boolean): Buffer | null {
  if (n === 0) return last ? LAST_CHUNK : null;
  const size = n.toString(16);
  const out = Buffer.allocUnsafe(size.length + 2 + n + 2 + (last ? LAST_CHUNK.length : 0));
  let at = out.write(size, 0, 'latin1');
  out[at++] = 13;
  out[at++] = 10;
  for (const b of parts) at += b.copy(out, at);
  out[at++] = 13;
  out[at++] = 10;
  if (last) LAST_CHUNK.copy(out, at);
  return out;
}
