import { Entry, type UrlField } from '../core/entry.js';
import type { InstanceRecord, InstanceView } from '../core/types.js';
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

  /** A varint field, omitted when 0 (proto3 default) unless `always`: a value that replaces one written before it (a decoder keeps a field's last value). */
  uint(field: number, n: number, always = false): void {
    if (n === 0 && !always) return;
    this.tag(field, 0);
    this.varint(n);
  }

  /** Bytes encoded elsewhere, as they are (fields of the message being written). */
  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  bool(field: number, b: boolean): void {
    if (b) this.uint(field, 1);
  }

  /** A string field, omitted when empty. Short ASCII (nearly every registry string) is copied by hand. */
  string(field: number, s: string): void {
    const n = s.length;
    if (n === 0) return;
    this.tag(field, 2);
    if (n < 128) {
      this.ensure(1 + n);
      const end = copyAscii(this.buf, this.pos + 1, s);
      if (end >= 0) return this.#shortLength(n, end);
    }
    this.#utf8(s);
  }

  /**
   * A string field given as three parts (a stored URL around its host name or address: see
   * core/entry.ts), written without joining them: a joined URL was a string per part and a
   * flat copy per URL written.
   */
  stringOf(field: number, head: string, middle: string, tail: string): void {
    const n = head.length + middle.length + tail.length;
    if (n === 0) return;
    this.tag(field, 2);
    if (n < 128) {
      this.ensure(1 + n);
      let end = copyAscii(this.buf, this.pos + 1, head);
      if (end >= 0) end = copyAscii(this.buf, end, middle);
      if (end >= 0) end = copyAscii(this.buf, end, tail);
      if (end >= 0) return this.#shortLength(n, end);
    }
    this.#utf8(head + middle + tail);
  }

  /** A string field holding a dotted IPv4 address given as its 32 bits: its digits written, no string built. */
  ipv4(field: number, address: number): void {
    this.tag(field, 2);
    this.ensure(16);
    const buf = this.buf;
    let p = this.pos + 1;
    for (let shift = 24; shift >= 0; shift -= 8) {
      const octet = (address >>> shift) & 255;
      if (octet >= 100) buf[p++] = 48 + Math.floor(octet / 100);
      if (octet >= 10) buf[p++] = 48 + (Math.floor(octet / 10) % 10);
      buf[p++] = 48 + (octet % 10);
      if (shift > 0) buf[p++] = 46; // .
    }
    this.#shortLength(p - this.pos - 1, p);
  }

  /** Ends a string of `n` (< 128) bytes copied after a byte left for its length, at `end`. */
  #shortLength(n: number, end: number): void {
    this.buf[this.pos] = n;
    this.pos = end;
  }

  /** A string's length and UTF-8 bytes (its tag written already). */
  #utf8(s: string): void {
    const bytes = Buffer.byteLength(s);
    this.varint(bytes);
    this.ensure(bytes);
    this.pos += this.buf.write(s, this.pos, bytes, 'utf8');
  }

  /** A length-delimited field holding bytes encoded elsewhere (an embedded message). */
  bytes(field: number, bytes: Uint8Array): void {
    this.tag(field, 2);
    this.varint(bytes.length);
    this.raw(bytes);
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

/** Copies `s` into `buf` from `at` when it is ASCII: where it ends, or -1 (then what was copied is to be overwritten). */
function copyAscii(buf: Buffer, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return -1;
    buf[at++] = c;
  }
  return at;
}

// Length room per sub-message: Port and LeaseInfo stay under 128 bytes, a metadata entry under
// 16 KiB, an instance under 2 MiB (validation bounds every field).
const SMALL = 1;
const ENTRY = 2;
const INSTANCE = 3;

/** Writes the fields of one roster.v1.Instance (a view: record plus this node's lease times). */
export function instance(w: Writer, view: InstanceView): void {
  const r = view.record;
  // A stored entry's address and URLs are written from their compact forms: building their
  // strings per write was ~0.6 KB of garbage per Register answer and Watch change.
  const entry = r instanceof Entry ? r : undefined;
  const hostName = r.hostName;
  w.string(1, r.app);
  w.string(2, r.instanceId);
  w.string(3, hostName);
  const ipv4 = entry?.ipv4;
  if (ipv4 === undefined) w.string(4, r.ipAddr);
  else w.ipv4(4, ipv4);
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
  url(w, 14, r, entry, 'homePageUrl', hostName);
  url(w, 15, r, entry, 'statusPageUrl', hostName);
  url(w, 16, r, entry, 'healthCheckUrl', hostName);
  leaseAndVersion(w, view, false);
}

/**
 * The last fields of an Instance: the lease (field 17) and the dirty and update times (18, 19).
 * With `always`, zeros are written too, so that they replace what was written before them.
 */
export function leaseAndVersion(w: Writer, view: InstanceView, always: boolean): void {
  const r = view.record;
  const l = view.lease;
  const at = w.begin(17, SMALL);
  w.uint(1, r.renewalIntervalSecs, always);
  w.uint(2, r.durationSecs, always);
  w.uint(3, l.registrationTimestamp, always);
  w.uint(4, l.lastRenewalTimestamp, always);
  w.uint(5, l.evictionTimestamp, always);
  w.uint(6, l.serviceUpTimestamp, always);
  w.end(at, SMALL);
  w.uint(18, r.lastDirtyTimestamp, always);
  w.uint(19, r.lastUpdatedTimestamp, always);
}

/** A URL field: a stored entry's pooled form written around the host name or address it was cut at. */
function url(w: Writer, field: number, r: InstanceRecord, entry: Entry | undefined, name: UrlField, hostName: string): void {
  const stored = entry === undefined ? r[name] : entry.storedUrl(name);
  if (typeof stored === 'string') w.string(field, stored);
  else w.stringOf(field, stored.head, stored.kind === 'host' ? hostName : r.ipAddr, stored.tail);
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
export function encodeListChunk(header: ChunkHeader, views: readonly InstanceView[], start = 0, maxCount = views.length, maxBytes = Infinity): { bytes: Buffer; next: number } {
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
export function encodeListFrame(header: ChunkHeader, views: readonly InstanceView[], start: number, maxCount: number, maxBytes: number): { frame: Buffer; next: number } {
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
