/**
 * A request body held for signing (at most the body limit, 100 KiB by default). Bytes are copied
 * into one buffer, grown by doubling up to the limit: a body sent in many small pieces (1-byte
 * chunks, 1-byte reads) then holds neither one Buffer object per piece nor the read buffers the
 * pieces came in, so what a request costs in memory is bounded by the limit, not by how the client
 * framed it.
 */
export class BodyBuffer {
  private buf: Buffer | null = null;
  private len = 0;

  /** `sizeHint`: the expected total (Content-Length), so a known body is allocated once. */
  constructor(
    private readonly limit: number,
    private readonly sizeHint = 0,
  ) {}

  get length(): number {
    return this.len;
  }

  /** Appends `b[start, end)`; the caller has checked the total against the limit. */
  push(b: Buffer, start: number, end: number): void {
    const n = end - start;
    if (n <= 0) return;
    const need = this.len + n;
    if (this.buf === null || need > this.buf.length) {
      let cap = Math.max(this.sizeHint, this.buf === null ? 4096 : this.buf.length * 2, need);
      cap = Math.min(cap, Math.max(this.limit, need));
      // Its own memory, not a slice of the shared pool (Node 24 pools allocations this size).
      const next = Buffer.allocUnsafeSlow(cap);
      if (this.buf !== null) this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    b.copy(this.buf, this.len, start, end);
    this.len = need;
  }

  /** The body so far (a view of the buffer, not a copy). */
  bytes(): Buffer {
    return this.buf === null ? Buffer.alloc(0) : this.buf.subarray(0, this.len);
  }
}
