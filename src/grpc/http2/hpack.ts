/**
 * HPACK (RFC 7541) for the gRPC port's HTTP/2: a decoder with its dynamic table, and an encoder
 * that never adds to the peer's table (a server's answers repeat few headers; a stateless encoder
 * cannot fall out of step with the peer).
 */

/** A malformed header block: a connection error (COMPRESSION_ERROR, RFC 9113 §4.3). */
export class HpackError extends Error {}

/** RFC 7541 Appendix A. */
// biome-ignore format: the RFC's table, as dense as it prints it
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];
const STATIC_NAME_INDEX = new Map<string, number>();
STATIC_TABLE.forEach(([name], i) => {
  if (!STATIC_NAME_INDEX.has(name)) STATIC_NAME_INDEX.set(name, i + 1);
});
const STATIC_FIELD_INDEX = new Map<string, number>(
  STATIC_TABLE.filter(([, value]) => value !== '').map(([name, value]) => [`${name}\0${value}`, STATIC_TABLE.findIndex(([n, v]) => n === name && v === value) + 1]),
);

/** RFC 7541 Appendix B: the Huffman code of each octet, as [code, length in bits]. */
// biome-ignore format: the RFC's table, as dense as it prints it
const HUFFMAN_CODES: readonly (readonly [number, number])[] = [
  [0x1ff8, 13], [0x7fffd8, 23], [0xfffffe2, 28], [0xfffffe3, 28], [0xfffffe4, 28], [0xfffffe5, 28], [0xfffffe6, 28], [0xfffffe7, 28],
  [0xfffffe8, 28], [0xffffea, 24], [0x3ffffffc, 30], [0xfffffe9, 28], [0xfffffea, 28], [0x3ffffffd, 30], [0xfffffeb, 28], [0xfffffec, 28],
  [0xfffffed, 28], [0xfffffee, 28], [0xfffffef, 28], [0xffffff0, 28], [0xffffff1, 28], [0xffffff2, 28], [0x3ffffffe, 30], [0xffffff3, 28],
  [0xffffff4, 28], [0xffffff5, 28], [0xffffff6, 28], [0xffffff7, 28], [0xffffff8, 28], [0xffffff9, 28], [0xffffffa, 28], [0xffffffb, 28],
  [0x14, 6], [0x3f8, 10], [0x3f9, 10], [0xffa, 12], [0x1ff9, 13], [0x15, 6], [0xf8, 8], [0x7fa, 11],
  [0x3fa, 10], [0x3fb, 10], [0xf9, 8], [0x7fb, 11], [0xfa, 8], [0x16, 6], [0x17, 6], [0x18, 6],
  [0x0, 5], [0x1, 5], [0x2, 5], [0x19, 6], [0x1a, 6], [0x1b, 6], [0x1c, 6], [0x1d, 6],
  [0x1e, 6], [0x1f, 6], [0x5c, 7], [0xfb, 8], [0x7ffc, 15], [0x20, 6], [0xffb, 12], [0x3fc, 10],
  [0x1ffa, 13], [0x21, 6], [0x5d, 7], [0x5e, 7], [0x5f, 7], [0x60, 7], [0x61, 7], [0x62, 7],
  [0x63, 7], [0x64, 7], [0x65, 7], [0x66, 7], [0x67, 7], [0x68, 7], [0x69, 7], [0x6a, 7],
  [0x6b, 7], [0x6c, 7], [0x6d, 7], [0x6e, 7], [0x6f, 7], [0x70, 7], [0x71, 7], [0x72, 7],
  [0xfc, 8], [0x73, 7], [0xfd, 8], [0x1ffb, 13], [0x7fff0, 19], [0x1ffc, 13], [0x3ffc, 14], [0x22, 6],
  [0x7ffd, 15], [0x3, 5], [0x23, 6], [0x4, 5], [0x24, 6], [0x5, 5], [0x25, 6], [0x26, 6],
  [0x27, 6], [0x6, 5], [0x74, 7], [0x75, 7], [0x28, 6], [0x29, 6], [0x2a, 6], [0x7, 5],
  [0x2b, 6], [0x76, 7], [0x2c, 6], [0x8, 5], [0x9, 5], [0x2d, 6], [0x77, 7], [0x78, 7],
  [0x79, 7], [0x7a, 7], [0x7b, 7], [0x7ffe, 15], [0x7fc, 11], [0x3ffd, 14], [0x1ffd, 13], [0xffffffc, 28],
  [0xfffe6, 20], [0x3fffd2, 22], [0xfffe7, 20], [0xfffe8, 20], [0x3fffd3, 22], [0x3fffd4, 22], [0x3fffd5, 22], [0x7fffd9, 23],
  [0x3fffd6, 22], [0x7fffda, 23], [0x7fffdb, 23], [0x7fffdc, 23], [0x7fffdd, 23], [0x7fffde, 23], [0xffffeb, 24], [0x7fffdf, 23],
  [0xffffec, 24], [0xffffed, 24], [0x3fffd7, 22], [0x7fffe0, 23], [0xffffee, 24], [0x7fffe1, 23], [0x7fffe2, 23], [0x7fffe3, 23],
  [0x7fffe4, 23], [0x1fffdc, 21], [0x3fffd8, 22], [0x7fffe5, 23], [0x3fffd9, 22], [0x7fffe6, 23], [0x7fffe7, 23], [0xffffef, 24],
  [0x3fffda, 22], [0x1fffdd, 21], [0xfffe9, 20], [0x3fffdb, 22], [0x3fffdc, 22], [0x7fffe8, 23], [0x7fffe9, 23], [0x1fffde, 21],
  [0x7fffea, 23], [0x3fffdd, 22], [0x3fffde, 22], [0xfffff0, 24], [0x1fffdf, 21], [0x3fffdf, 22], [0x7fffeb, 23], [0x7fffec, 23],
  [0x1fffe0, 21], [0x1fffe1, 21], [0x3fffe0, 22], [0x1fffe2, 21], [0x7fffed, 23], [0x3fffe1, 22], [0x7fffee, 23], [0x7fffef, 23],
  [0xfffea, 20], [0x3fffe2, 22], [0x3fffe3, 22], [0x3fffe4, 22], [0x7ffff0, 23], [0x3fffe5, 22], [0x3fffe6, 22], [0x7ffff1, 23],
  [0x3ffffe0, 26], [0x3ffffe1, 26], [0xfffeb, 20], [0x7fff1, 19], [0x3fffe7, 22], [0x7ffff2, 23], [0x3fffe8, 22], [0x1ffffec, 25],
  [0x3ffffe2, 26], [0x3ffffe3, 26], [0x3ffffe4, 26], [0x7ffffde, 27], [0x7ffffdf, 27], [0x3ffffe5, 26], [0xfffff1, 24], [0x1ffffed, 25],
  [0x7fff2, 19], [0x1fffe3, 21], [0x3ffffe6, 26], [0x7ffffe0, 27], [0x7ffffe1, 27], [0x3ffffe7, 26], [0x7ffffe2, 27], [0xfffff2, 24],
  [0x1fffe4, 21], [0x1fffe5, 21], [0x3ffffe8, 26], [0x3ffffe9, 26], [0xffffffd, 28], [0x7ffffe3, 27], [0x7ffffe4, 27], [0x7ffffe5, 27],
  [0xfffec, 20], [0xfffff3, 24], [0xfffed, 20], [0x1fffe6, 21], [0x3fffe9, 22], [0x1fffe7, 21], [0x1fffe8, 21], [0x7ffff3, 23],
  [0x3fffea, 22], [0x3fffeb, 22], [0x1ffffee, 25], [0x1ffffef, 25], [0xfffff4, 24], [0xfffff5, 24], [0x3ffffea, 26], [0x7ffff4, 23],
  [0x3ffffeb, 26], [0x7ffffe6, 27], [0x3ffffec, 26], [0x3ffffed, 26], [0x7ffffe7, 27], [0x7ffffe8, 27], [0x7ffffe9, 27], [0x7ffffea, 27],
  [0x7ffffeb, 27], [0xffffffe, 28], [0x7ffffec, 27], [0x7ffffed, 27], [0x7ffffee, 27], [0x7ffffef, 27], [0x7fffff0, 27], [0x3ffffee, 26],
];

/**
 * The Huffman code as a table walked four bits at a time: state × nibble → next state, the octet
 * emitted (or -1) and whether the state is one a padded end may stop in (RFC 7541 §5.2: at most
 * 7 bits, all ones). Built once from the codes: 256 states of 16 entries.
 */
const HUFFMAN_DECODE = (() => {
  // The code's binary tree: internal nodes numbered from 0 (the root); leaves are octets.
  const children: number[][] = [[-1, -1]];
  const leaf: number[][] = [[-1, -1]];
  HUFFMAN_CODES.forEach(([code, bits], octet) => {
    let node = 0;
    for (let b = bits - 1; b > 0; b--) {
      const bit = (code >>> b) & 1;
      if (children[node]![bit] === -1) {
        children[node]![bit] = children.length;
        children.push([-1, -1]);
        leaf.push([-1, -1]);
      }
      node = children[node]![bit]!;
    }
    leaf[node]![code & 1] = octet;
  });
  // A state is an internal node plus how many bits deep it is, all ones so far (for the end check).
  const states = children.length;
  const next = new Int16Array(states * 16);
  const emit = new Int16Array(states * 16);
  // Where a padded end may stop: the root and the nodes reached from it by up to 7 one-bits.
  const padding = new Uint8Array(states);
  for (let node = 0, bits = 0; node !== -1 && bits <= 7; node = children[node]![1]!, bits++) padding[node] = 1;
  for (let state = 0; state < states; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let out = -1;
      let failed = false;
      for (let b = 3; b >= 0; b--) {
        const bit = (nibble >> b) & 1;
        const octet = leaf[node]![bit]!;
        if (octet !== -1) {
          if (out !== -1) {
            failed = true; // two octets in one nibble: no code is shorter than 5 bits
            break;
          }
          out = octet;
          node = 0;
        } else {
          node = children[node]![bit]!;
          if (node === -1) {
            failed = true; // EOS or beyond: invalid in a string
            break;
          }
        }
      }
      next[state * 16 + nibble] = failed ? -1 : node;
      emit[state * 16 + nibble] = out;
    }
  }
  return { next, emit, padding };
})();

function huffmanDecode(bytes: Buffer, start: number, end: number): string {
  const { next, emit, padding } = HUFFMAN_DECODE;
  const out: number[] = [];
  let state = 0;
  for (let i = start; i < end; i++) {
    const byte = bytes[i]!;
    let at = state * 16 + (byte >> 4);
    let octet = emit[at]!;
    state = next[at]!;
    if (state === -1) throw new HpackError('invalid Huffman code');
    if (octet !== -1) out.push(octet);
    at = state * 16 + (byte & 0x0f);
    octet = emit[at]!;
    state = next[at]!;
    if (state === -1) throw new HpackError('invalid Huffman code');
    if (octet !== -1) out.push(octet);
  }
  if (padding[state] === 0) throw new HpackError('Huffman string padded with other than the EOS prefix');
  return String.fromCharCode.apply(null, out);
}

export type HeaderField = readonly [name: string, value: string];

export interface HpackDecoderOptions {
  /** The dynamic table size this side advertised (SETTINGS_HEADER_TABLE_SIZE); the peer may only lower it. Default 4096. */
  readonly maxTableSize?: number;
}

/** One per connection: its dynamic table carries over from header block to header block. */
export class HpackDecoder {
  readonly #limit: number;
  #table: HeaderField[] = []; // newest first
  #size = 0;
  #max: number;
  #pos = 0;

  constructor(options: HpackDecoderOptions = {}) {
    this.#limit = options.maxTableSize ?? 4096;
    this.#max = this.#limit;
  }

  /** Decodes one complete header block (the HEADERS frame's fragment and its CONTINUATIONs). */
  decode(block: Buffer): HeaderField[] {
    const fields: HeaderField[] = [];
    const end = block.length;
    this.#pos = 0;
    let sizeUpdates = true; // allowed only at the start of a block (RFC 7541 §4.2)
    while (this.#pos < end) {
      const byte = block[this.#pos]!;
      if (byte & 0x80) {
        const index = this.#integer(block, 7);
        if (index === 0) throw new HpackError('indexed header field with index 0');
        fields.push(this.#entry(index));
      } else if (byte & 0x40) {
        const index = this.#integer(block, 6);
        const name = index === 0 ? this.#string(block) : this.#entry(index)[0];
        const field: HeaderField = [name, this.#string(block)];
        this.#add(field);
        fields.push(field);
      } else if (byte & 0x20) {
        if (!sizeUpdates) throw new HpackError('dynamic table size update after a header field');
        const max = this.#integer(block, 5);
        if (max > this.#limit) throw new HpackError(`dynamic table size update to ${max}, above the ${this.#limit} allowed`);
        this.#max = max;
        this.#evict(0);
        continue;
      } else {
        // Literal without indexing (0000) or never indexed (0001): the same to a decoder.
        const index = this.#integer(block, 4);
        const name = index === 0 ? this.#string(block) : this.#entry(index)[0];
        fields.push([name, this.#string(block)]);
      }
      sizeUpdates = false;
    }
    return fields;
  }

  #entry(index: number): HeaderField {
    const field = index <= STATIC_TABLE.length ? STATIC_TABLE[index - 1] : this.#table[index - STATIC_TABLE.length - 1];
    if (field === undefined) throw new HpackError(`header index ${index} is not in the table`);
    return field;
  }

  #add(field: HeaderField): void {
    const size = field[0].length + field[1].length + 32;
    this.#evict(size);
    if (size > this.#max) return; // an entry larger than the table empties it (RFC 7541 §4.4)
    this.#table.unshift(field);
    this.#size += size;
  }

  #evict(room: number): void {
    while (this.#size + room > this.#max && this.#table.length > 0) {
      const [name, value] = this.#table.pop()!;
      this.#size -= name.length + value.length + 32;
    }
  }

  #integer(block: Buffer, prefix: number): number {
    if (this.#pos >= block.length) throw new HpackError('header block cut short');
    const mask = (1 << prefix) - 1;
    let value = block[this.#pos++]! & mask;
    if (value < mask) return value;
    for (let shift = 0; ; shift += 7) {
      if (this.#pos >= block.length) throw new HpackError('header block cut short in an integer');
      if (shift > 28) throw new HpackError('integer too large');
      const byte = block[this.#pos++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
  }

  #string(block: Buffer): string {
    if (this.#pos >= block.length) throw new HpackError('header block cut short');
    const huffman = (block[this.#pos]! & 0x80) !== 0;
    const length = this.#integer(block, 7);
    const start = this.#pos;
    const end = start + length;
    if (end > block.length) throw new HpackError('header string runs past the block');
    this.#pos = end;
    return huffman ? huffmanDecode(block, start, end) : block.toString('latin1', start, end);
  }
}

/**
 * Encodes header fields without touching the peer's dynamic table: a static-table index where the
 * whole field is there (`:status: 200`), else a literal "without indexing" with the static name's
 * index when there is one. Values are latin1 (header values are visible ASCII).
 */
export function encodeHeaders(fields: readonly HeaderField[]): Buffer {
  const parts: number[] = [];
  for (const [name, value] of fields) {
    const whole = STATIC_FIELD_INDEX.get(`${name}\0${value}`);
    if (whole !== undefined) {
      integer(parts, whole, 7, 0x80);
      continue;
    }
    const nameIndex = STATIC_NAME_INDEX.get(name);
    if (nameIndex !== undefined) integer(parts, nameIndex, 4, 0x00);
    else {
      parts.push(0x00);
      text(parts, name);
    }
    text(parts, value);
  }
  return Buffer.from(parts);
}

function integer(out: number[], value: number, prefix: number, flags: number): void {
  const mask = (1 << prefix) - 1;
  if (value < mask) {
    out.push(flags | value);
    return;
  }
  out.push(flags | mask);
  value -= mask;
  while (value >= 0x80) {
    out.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
}

function text(out: number[], value: string): void {
  integer(out, value.length, 7, 0x00);
  for (let i = 0; i < value.length; i++) out.push(value.charCodeAt(i) & 0xff);
}
