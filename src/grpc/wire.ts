import type { InstanceView } from '../core/types.js';
import { statusToProto } from './convert.js';
import { frameMessage } from './response-compression.js';

/**
 * A hand-written protobuf encoder for the one hot answer: ListApplications chunks. A full read
 * of 100k instances through generated objects and the generic writer costs ~0.5 s of
 * server CPU; writing the records straight into one buffer costs a fraction. The bytes are
 * the same message (roster.v1.ListApplicationsResponse); a property test decodes them with
 * the generated decoder.
 */
export class Writer {
  buf: Buffer;
  pos = 0;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + extra));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  varint(n: number): void {
    this.ensure(10);
    const buf = this.buf;
    while (n > 0x7fffffff) {
      buf[this.pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    while (n > 0x7f) {
      buf[this.pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    buf[this.pos++] = n;
  }

  tag(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  /** A varint field, omitted when 0 (proto3 default). */
  uint(field: number, n: number): void {
    if (n === 0) return;
    this.tag(field, 0);
    this.varint(n);
  }

  bool(field: number, b: boolean): void {
    if (b) this.uint(field, 1);
  }

  /** A string field, omitted when empty. Short ASCII (nearly every registry string) is copied by hand. */
  string(field: number, s: string): void {
    const n = s.length;
    if (n === 0) return;
    this.tag(field, 2);
    const start = this.pos;
    if (n < 128) {
      this.ensure(1 + n);
      const buf = this.buf;
      let p = start + 1;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) {
          p = -1;
          break;
        }
        buf[p++] = c;
      }
      if (p >= 0) {
        buf[start] = n;
        this.pos = p;
        return;
      }
    }
    const bytes = Buffer.byteLength(s);
    this.varint(bytes);
    this.ensure(bytes);
    this.pos += this.buf.write(s, this.pos, bytes, 'utf8');
  }

  /** A length-delimited field holding bytes encoded elsewhere (an embedded message). */
  bytes(field: number, bytes: Uint8Array): void {
    this.tag(field, 2);
    this.varint(bytes.length);
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Opens a length-delimited sub-message, leaving `room` bytes for its length; see {@link end}. */
  begin(field: number, room: number): number {
    this.tag(field, 2);
    this.ensure(room);
    const lengthAt = this.pos;
    this.pos += room;
    return lengthAt;
  }

  /** Writes the length of the sub-message opened at `lengthAt` and closes the gap it left. */
  end(lengthAt: number, room: number): void {
    const start = lengthAt + room;
    const end = this.pos;
    this.pos = lengthAt;
    this.varint(end - start);
    const gap = start - this.pos;
    if (gap < 0) throw new RangeError(`sub-message of ${end - start} bytes does not fit a ${room}-byte length`);
    if (gap > 0) this.buf.copyWithin(this.pos, start, end);
    this.pos = end - gap;
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

// Length room per sub-message: Port and LeaseInfo stay under 128 bytes, a metadata entry under
// 16 KiB, an instance under 2 MiB (validation bounds every field).
const SMALL = 1;
const ENTRY = 2;
const INSTANCE = 3;

/** Writes the fields of one roster.v1.Instance (a view: record plus this node's lease times). */
export function instance(w: Writer, view: InstanceView): void {
  const r = view.record;
  const l = view.lease;
  w.string(1, r.app);
  w.string(2, r.instanceId);
  w.string(3, r.hostName);
  w.string(4, r.ipAddr);
  let at = w.begin(5, SMALL);
  w.uint(1, r.port.number);
  w.bool(2, r.port.enabled);
  w.end(at, SMALL);
  at = w.begin(6, SMALL);
  w.uint(1, r.securePort.number);
  w.bool(2, r.securePort.enabled);
  w.end(at, SMALL);
  w.uint(7, statusToProto(r.status));
  w.uint(8, statusToProto(r.overriddenStatus));
  w.string(9, r.vipAddress);
  w.string(10, r.secureVipAddress);
  w.string(11, r.zone);
  w.string(12, r.region);
  for (const key in r.metadata) {
    at = w.begin(13, ENTRY);
    w.string(1, key);
    w.string(2, r.metadata[key]!);
    w.end(at, ENTRY);
  }
  w.string(14, r.homePageUrl);
  w.string(15, r.statusPageUrl);
  w.string(16, r.healthCheckUrl);
  at = w.begin(17, SMALL);
  w.uint(1, r.renewalIntervalSecs);
  w.uint(2, r.durationSecs);
  w.uint(3, l.registrationTimestamp);
  w.uint(4, l.lastRenewalTimestamp);
  w.uint(5, l.evictionTimestamp);
  w.uint(6, l.serviceUpTimestamp);
  w.end(at, SMALL);
  w.uint(18, r.lastDirtyTimestamp);
  w.uint(19, r.lastUpdatedTimestamp);
}

/** What every ListApplications chunk carries besides its instances. */
export interface ChunkHeader {
  readonly revision: number;
  readonly reconcileHash: string;
  readonly totalInstances: number;
  readonly nodeId: string;
}

/**
 * Encodes `views[start..]` as one roster.v1.ListApplicationsResponse of at most `maxCount`
 * instances, stopping once it passes `maxBytes` (so it stays under a client's receive limit:
 * one instance is far smaller than the headroom). Returns the bytes and where the next chunk
 * starts. Timestamps are non-negative (validated).
 */
export function encodeListChunk(
  header: ChunkHeader,
  views: readonly InstanceView[],
  start = 0,
  maxCount = views.length,
  maxBytes = Infinity,
): { bytes: Buffer; next: number } {
  const w = new Writer(256 + Math.min(Math.min(views.length, start + maxCount) - start, 4096) * 512);
  const next = writeListChunk(w, header, views, start, maxCount, maxBytes);
  return { bytes: w.finish(), next };
}

/**
 * Encoding space shared by every {@link encodeListFrame} call (encoding is synchronous): it grows
 * to the largest chunk once, instead of a fresh half-megabyte buffer per chunk.
 */
const scratch = new Writer(1024 * 1024);

/**
 * The same chunk as {@link encodeListChunk}, as a gRPC message frame of exactly its size
 * (uncompressed flag, length, bytes): what a cached snapshot keeps and writes as it is.
 */
export function encodeListFrame(
  header: ChunkHeader,
  views: readonly InstanceView[],
  start: number,
  maxCount: number,
  maxBytes: number,
): { frame: Buffer; next: number } {
  scratch.pos = 0;
  const next = writeListChunk(scratch, header, views, start, maxCount, maxBytes);
  return { frame: frameMessage(scratch.finish(), false), next };
}

function writeListChunk(w: Writer, header: ChunkHeader, views: readonly InstanceView[], start: number, maxCount: number, maxBytes: number): number {
  const end = Math.min(views.length, start + maxCount);
  w.uint(1, header.revision);
  w.string(2, header.reconcileHash);
  w.uint(3, header.totalInstances);
  w.string(5, header.nodeId);
  let i = start;
  while (i < end && w.pos < maxBytes) {
    const at = w.begin(4, INSTANCE);
    instance(w, views[i++]!);
    w.end(at, INSTANCE);
  }
  return i;
}
