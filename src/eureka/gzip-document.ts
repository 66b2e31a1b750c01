import { promisify } from 'node:util';
import { constants, crc32, deflateRaw as deflateRawCallback } from 'node:zlib';
import type { ChangeType, InstanceRecord, InstanceView } from '../core/types.js';

const deflateRaw = promisify(deflateRawCallback);

/**
 * A gzip body of a whole-registry document, rebuilt after a change by compressing only the
 * parts that changed. The document is cut into segments (runs of instances of one app, ended
 * where an instance id hashes to a boundary, so an insert moves no other boundary); each
 * segment is compressed on its own as raw deflate ending in a sync flush (byte-aligned, no
 * final block), with the text just before it as preset dictionary (so it may refer back only
 * to what the inflater's window will hold there), and compressed segments are laid end to
 * end in one gzip member. The glue between them (document head, app names, separators) is
 * written as stored blocks, and the trailer's CRC-32 is combined from the segments' CRCs.
 * The result is one ordinary gzip member that any client inflates.
 *
 * A segment is reused while it holds the very same (immutable) records after the very same
 * text; lease timestamps in it are those of when it was encoded. Memory: the compressed segments of the live registry
 * (about 50 bytes per instance), held through the records they start with.
 */
export class GzipDocument {
  readonly #level: number;
  /** Keyed by the segment's first record; valid while its records are the same objects. */
  readonly #segments = new WeakMap<InstanceRecord, Segment>();
  #lastBuild = { segments: 0, compressed: 0 };

  constructor(options: { readonly level?: number } = {}) {
    this.#level = options.level ?? constants.Z_DEFAULT_COMPRESSION;
  }

  /** Segments in the last body built, and how many of them had to be compressed (not reused). */
  get lastBuild(): { readonly segments: number; readonly compressed: number } {
    return this.#lastBuild;
  }

  /**
   * The gzip body of `head`, then each app's instances (each app opened by `appOpen(name,
   * first)` and closed by `appClose`, instances separated by `separator`), then `tail`.
   * `items` come grouped by app (as the registry's snapshot orders them); `encode` writes one.
   */
  async build(live: readonly DocumentItem[], shape: DocumentShape, encode: (item: DocumentItem) => string): Promise<Buffer> {
    // The registry's entries change in place: hold on to the records of this moment (lease
    // times are read when encoding, through the entry, which keeps them when it is replaced).
    const views: Frozen[] = live.map(({ view, actionType }) => ({ entry: view, record: view.record, actionType }));
    const encodeFrozen = (f: Frozen): string => encode({ view: { record: f.record, lease: f.entry.lease }, actionType: f.actionType });
    const out = new GzipAssembler();
    const pending: Promise<void>[] = [];
    let glue = shape.head;
    // What the inflater's window holds before the next segment: the previous instance and the glue.
    let previous = '';
    let firstApp = true;
    let segments = 0;
    let compressed = 0;
    for (let start = 0; start < views.length; ) {
      const app = views[start]!.record.app;
      glue += shape.appOpen(app, firstApp);
      firstApp = false;
      let firstSegment = true;
      while (start < views.length && views[start]!.record.app === app) {
        const end = segmentEnd(views, start);
        if (!firstSegment) glue += shape.separator;
        firstSegment = false;
        out.glue(glue);
        const slot = out.reserve();
        segments++;
        const cached = this.#segments.get(views[start]!.record);
        // Compared part by part, not as one joined dictionary: the previous text is most often
        // the very string the last build kept, which compares by identity.
        if (cached !== undefined && cached.previous === previous && cached.glue === glue && holds(cached, views, start, end)) {
          slot.fill(cached);
          previous = cached.last;
          glue = '';
        } else {
          compressed++;
          const dictionary = previous + glue;
          const segmentGlue = glue;
          const segmentPrevious = previous;
          glue = '';
          const segmentViews = views.slice(start, end);
          const records = segmentViews.map((v) => v.record);
          const actions = segmentViews.map((v) => v.actionType);
          const texts = segmentViews.map(encodeFrozen);
          const text = Buffer.from(texts.join(shape.separator));
          const last = tailOf(texts, shape.separator);
          previous = last;
          pending.push(
            deflateRaw(text, { level: this.#level, finishFlush: constants.Z_SYNC_FLUSH, dictionary: Buffer.from(dictionary) }).then((deflated) => {
              const segment: Segment = { records, actions, previous: segmentPrevious, glue: segmentGlue, last, deflated, crc: crc32(text), length: text.length };
              this.#segments.set(records[0]!, segment);
              slot.fill(segment);
            }),
          );
          // Compression runs on libuv's threads; a few at a time keeps memory flat.
          if (pending.length >= MAX_PENDING) await Promise.all(pending.splice(0));
        }
        start = end;
      }
      glue += shape.appClose;
    }
    out.glue(glue + shape.tail);
    await Promise.all(pending);
    this.#lastBuild = { segments, compressed };
    return out.finish();
  }
}

/** The fixed text around and between instances of a document, for one format. */
export interface DocumentShape {
  readonly head: string;
  appOpen(app: string, first: boolean): string;
  readonly separator: string;
  readonly appClose: string;
  readonly tail: string;
}

/** An instance of the document; `actionType` is set in deltas. */
export interface DocumentItem {
  readonly view: InstanceView;
  readonly actionType?: ChangeType | undefined;
}

/** An item with its record as it was when the build started. */
interface Frozen {
  readonly entry: InstanceView;
  readonly record: InstanceRecord;
  readonly actionType: ChangeType | undefined;
}

interface Segment {
  readonly records: readonly InstanceRecord[];
  readonly actions: readonly (ChangeType | undefined)[];
  /**
   * The text just before the segment, `previous` (the previous instances as written) then
   * `glue`, given to deflate as its preset dictionary: back-references into it are valid
   * because the inflater's window holds exactly that text. So the first instance of a segment
   * compresses as well as in one long stream, and the segment is reusable only after the same text.
   */
  readonly previous: string;
  readonly glue: string;
  /** The segment's last instance as written: the next segment's dictionary starts with it. */
  readonly last: string;
  /** Raw deflate ending in a sync flush. */
  readonly deflated: Buffer;
  readonly crc: number;
  /** Uncompressed bytes. */
  readonly length: number;
}

const MAX_PENDING = 8;
/** How much of the text before a segment is its dictionary: a few instances (deflate looks back 32 KiB at most). */
const DICTIONARY_BYTES = 8 * 1024;
/** An instance whose id hashes to 0 modulo this ends a segment: about 128 instances per segment. */
const BOUNDARY_MODULUS = 128;
const MAX_SEGMENT = 1024;

/** Where the segment starting at `start` ends (exclusive): an id boundary, the app's end, or the cap. */
function segmentEnd(views: readonly Frozen[], start: number): number {
  const app = views[start]!.record.app;
  let end = start;
  while (end < views.length && end - start < MAX_SEGMENT && views[end]!.record.app === app) {
    if (fnv1a(views[end++]!.record.instanceId) % BOUNDARY_MODULUS === 0) break;
  }
  return end;
}

/** The segment's last instances as written, up to {@link DICTIONARY_BYTES}: the next segment's dictionary. */
function tailOf(texts: readonly string[], separator: string): string {
  let tail = texts.at(-1)!;
  for (let i = texts.length - 2; i >= 0 && tail.length + texts[i]!.length < DICTIONARY_BYTES; i--) tail = texts[i]! + separator + tail;
  return tail;
}

/** Whether `segment` was made of exactly the records (and actions) of `views[start, end)`. */
function holds(segment: Segment, views: readonly Frozen[], start: number, end: number): boolean {
  if (segment.records.length !== end - start) return false;
  for (let i = start; i < end; i++) {
    if (segment.records[i - start] !== views[i]!.record || segment.actions[i - start] !== views[i]!.actionType) return false;
  }
  return true;
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/** Lays out one gzip member: header, pieces in order (some filled later), final block, trailer. */
class GzipAssembler {
  readonly #pieces: (Buffer | { segment?: Segment })[] = [GZIP_HEADER];
  /** CRC-32 and length of the uncompressed data, in order: glue is folded in when the preceding segments are known. */
  readonly #parts: ({ crc: number; length: number } | { segment?: Segment })[] = [];

  glue(text: string): void {
    if (text === '') return;
    const bytes = Buffer.from(text);
    for (let at = 0; at < bytes.length; at += MAX_STORED) this.#pieces.push(storedBlock(bytes.subarray(at, at + MAX_STORED)));
    this.#parts.push({ crc: crc32(bytes), length: bytes.length });
  }

  /** A place for a segment compressed later (or now). */
  reserve(): { fill(segment: Segment): void } {
    const slot: { segment?: Segment } = {};
    this.#pieces.push(slot);
    this.#parts.push(slot);
    return { fill: (segment) => void (slot.segment = segment) };
  }

  finish(): Buffer {
    let crc = 0;
    let length = 0;
    for (const part of this.#parts) {
      const { crc: partCrc, length: partLength } = 'segment' in part ? part.segment! : (part as { crc: number; length: number });
      crc = crc32Combine(crc, partCrc, partLength);
      length += partLength;
    }
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(crc, 0);
    trailer.writeUInt32LE(length % 2 ** 32, 4);
    const buffers = this.#pieces.map((piece) => (Buffer.isBuffer(piece) ? piece : piece.segment!.deflated));
    return Buffer.concat([...buffers, FINAL_EMPTY_BLOCK, trailer]);
  }
}

/** gzip member header: deflate, no name, no mtime, OS unknown (RFC 1952). */
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);
/** An empty final block with fixed codes (BFINAL=1, BTYPE=01, end-of-block): ends the deflate stream. */
const FINAL_EMPTY_BLOCK = Buffer.from([0x03, 0x00]);
const MAX_STORED = 65_535;

/** A non-final stored block (RFC 1951 §3.2.4); the stream is byte-aligned wherever one is placed. */
function storedBlock(data: Buffer): Buffer {
  const block = Buffer.alloc(5 + data.length);
  block[0] = 0x00;
  block.writeUInt16LE(data.length, 1);
  block.writeUInt16LE(~data.length & 0xffff, 3);
  data.copy(block, 5);
  return block;
}

const POLY = 0xedb88320;

/** a·b modulo the CRC polynomial (reflected), as zlib's multmodp. */
function multmodp(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if ((a & m) !== 0) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** x^(2^k) modulo the polynomial, for k < 32. */
const X2N = (() => {
  const table = new Uint32Array(32);
  let p = 0x40000000; // x^1
  table[0] = p;
  for (let n = 1; n < 32; n++) table[n] = p = multmodp(p, p);
  return table;
})();

/** x^(n·2^k) modulo the polynomial. */
function x2nmodp(n: number, k: number): number {
  let p = 0x80000000; // x^0 = 1
  while (n > 0) {
    if (n % 2 === 1) p = multmodp(X2N[k & 31]!, p);
    n = Math.floor(n / 2);
    k++;
  }
  return p;
}

/** The CRC-32 of A followed by B, from CRC(A), CRC(B) and B's length (zlib's crc32_combine). */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  return (multmodp(x2nmodp(lengthB, 3), crcA) ^ crcB) >>> 0;
}
