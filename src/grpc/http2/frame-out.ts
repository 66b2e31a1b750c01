import { FRAME_HEADER } from './frames.js';

/** Payloads below this are copied in after their frame header; larger ones are written as they are. */
const COALESCE_BYTES = 4096;
/**
 * The shared chunk's size: a full one is replaced by a new one (slices of the old stay valid).
 * A socket whose client stops reading holds its unsent slice, and with it the whole chunk, so a
 * chunk is kept small: 16 KiB, twice Node's own pool slab (which small Buffers pin the same way).
 */
const CHUNK_BYTES = 16 * 1024;

/**
 * Every connection's small frames are written one after another into one shared chunk; a full chunk
 * is replaced, never reused, so a slice handed to a socket is never written over and the socket
 * may hold it as long as it needs. A unary answer (HEADERS, DATA, trailers) was three 9-byte
 * header Buffers, its payloads, and a Buffer.concat of them all at the flush.
 */
let chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
let used = 0;

/**
 * One connection's frames not yet written to its socket: runs of the shared chunk (each run
 * what the connection wrote while no other connection wrote in between), and large payloads as
 * they were given.
 */
export class FrameOut {
  #parts: Buffer[] = [];
  #bytes = 0;
  /** The open run: where it is (undefined when there is none). */
  #runChunk: Buffer | undefined;
  #runStart = 0;
  #runEnd = 0;

  /** Bytes framed and not yet taken. */
  get bytes(): number {
    return this.#bytes;
  }

  frame(type: number, flags: number, id: number, payload: Buffer): void {
    const inline = payload.length < COALESCE_BYTES;
    const at = this.#reserve(FRAME_HEADER + (inline ? payload.length : 0));
    const into = chunk;
    into[at] = payload.length >>> 16;
    into[at + 1] = (payload.length >>> 8) & 0xff;
    into[at + 2] = payload.length & 0xff;
    into[at + 3] = type;
    into[at + 4] = flags;
    into.writeUInt32BE(id, at + 5);
    if (inline) payload.copy(into, at + FRAME_HEADER);
    else if (payload.length > 0) {
      this.#cut();
      this.#parts.push(payload);
    }
    this.#bytes += FRAME_HEADER + payload.length;
  }

  /** Everything framed since the last take, in order. */
  take(): Buffer[] {
    this.#cut();
    const parts = this.#parts;
    this.#parts = [];
    this.#bytes = 0;
    return parts;
  }

  /** `bytes` at the end of the shared chunk, continuing the open run when it ends there. */
  #reserve(bytes: number): number {
    if (CHUNK_BYTES - used < bytes) {
      chunk = Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, bytes));
      used = 0;
    }
    if (this.#runChunk !== chunk || this.#runEnd !== used) {
      this.#cut();
      this.#runChunk = chunk;
      this.#runStart = used;
    }
    const at = used;
    used += bytes;
    this.#runEnd = used;
    return at;
  }

  #cut(): void {
    if (this.#runChunk !== undefined && this.#runEnd > this.#runStart) this.#parts.push(this.#runChunk.subarray(this.#runStart, this.#runEnd));
    this.#runChunk = undefined;
  }
}
