// A bare unary gRPC server whose HTTP/2 is written in JavaScript on node:net (RFC 9113 framing,
// RFC 7541 HPACK decoding), for `npm run bench -- --floor`: what HTTP/2 costs a Node thread per
// unary call when it is not node:http2. It answers every call with the same bytes, as
// floor-server.js does, and does no more of HTTP/2 than serving those calls needs: no server
// push, no priorities, no TLS. A measuring instrument, not a server to run.
// `node bench/floor-h2.js PORT`; prints "listening"; exits on SIGTERM.
import net from 'node:net';

const port = Number(process.argv[2]);
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const FRAME_HEADER = 9;
const DATA = 0, HEADERS = 1, RST_STREAM = 3, SETTINGS = 4, PUSH_PROMISE = 5, PING = 6, GOAWAY = 7, WINDOW_UPDATE = 8, CONTINUATION = 9;
const END_STREAM = 0x1, ACK = 0x1, END_HEADERS = 0x4, PADDED = 0x8, PRIORITY = 0x20;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
/** The receive windows we give: a stream's (SETTINGS) and the connection's (WINDOW_UPDATE), topped up at half. */
const STREAM_WINDOW = 1 << 20;
const CONNECTION_WINDOW = 1 << 30;

/** A HeartbeatResponse { status: UP }, framed as a gRPC message. */
const MESSAGE = Buffer.from([0x08, 0x01]);
const FRAMED = Buffer.concat([Buffer.from([0, 0, 0, 0, MESSAGE.length]), MESSAGE]);
// HPACK: `:status: 200` is static entry 8; content-type (static name 31) and grpc-status as literals never added to the table.
const RESPONSE_HEADERS = Buffer.concat([Buffer.from([0x88, 0x0f, 31 - 15]), literal('application/grpc+proto')]);
const RESPONSE_TRAILERS = Buffer.concat([Buffer.from([0x00]), literal('grpc-status'), literal('0')]);

function literal(text) {
  return Buffer.concat([Buffer.from([text.length]), Buffer.from(text, 'latin1')]);
}

/** RFC 7541 Appendix A. */
const STATIC_TABLE = [
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

/** RFC 7541 Appendix B: [code, bits] by symbol. */
const HUFFMAN = [
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

/** The Huffman code as a binary tree: node = [child0, child1], leaf = symbol. */
const HUFFMAN_TREE = (() => {
  const root = [undefined, undefined];
  HUFFMAN.forEach(([code, bits], symbol) => {
    let node = root;
    for (let b = bits - 1; b > 0; b--) {
      const bit = (code >>> b) & 1;
      node = node[bit] ??= [undefined, undefined];
    }
    node[code & 1] = symbol;
  });
  return root;
})();

function huffmanDecode(buf, start, end) {
  let text = '';
  let node = HUFFMAN_TREE;
  for (let i = start; i < end; i++) {
    const byte = buf[i];
    for (let b = 7; b >= 0; b--) {
      const next = node[(byte >> b) & 1];
      if (next === undefined) throw new Error('invalid Huffman code');
      if (typeof next === 'number') {
        text += String.fromCharCode(next);
        node = HUFFMAN_TREE;
      } else node = next;
    }
  }
  return text; // trailing bits are the EOS prefix (all ones), left undecoded
}

/** An HPACK decoder: one per connection, its dynamic table carried from header block to header block. */
class Hpack {
  table = []; // newest first: [name, value]
  size = 0;
  max = 4096;
  pos = 0;

  decode(buf, start, end) {
    const fields = [];
    this.pos = start;
    while (this.pos < end) {
      const byte = buf[this.pos];
      if (byte & 0x80) {
        fields.push(this.entry(this.integer(buf, 7)));
      } else if (byte & 0x40) {
        const index = this.integer(buf, 6);
        const name = index === 0 ? this.string(buf) : this.entry(index)[0];
        const field = [name, this.string(buf)];
        this.add(field);
        fields.push(field);
      } else if (byte & 0x20) {
        this.max = this.integer(buf, 5);
        this.evict(0);
      } else {
        const index = this.integer(buf, 4);
        const name = index === 0 ? this.string(buf) : this.entry(index)[0];
        fields.push([name, this.string(buf)]);
      }
    }
    return fields;
  }

  entry(index) {
    const field = index <= STATIC_TABLE.length ? STATIC_TABLE[index - 1] : this.table[index - STATIC_TABLE.length - 1];
    if (field === undefined) throw new Error(`HPACK index ${index} out of range`);
    return field;
  }

  add(field) {
    const size = field[0].length + field[1].length + 32;
    this.evict(size);
    if (size > this.max) return;
    this.table.unshift(field);
    this.size += size;
  }

  evict(room) {
    while (this.size + room > this.max && this.table.length > 0) {
      const [name, value] = this.table.pop();
      this.size -= name.length + value.length + 32;
    }
  }

  integer(buf, prefix) {
    const mask = (1 << prefix) - 1;
    let value = buf[this.pos++] & mask;
    if (value < mask) return value;
    let shift = 0;
    let byte;
    do {
      byte = buf[this.pos++];
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return value;
  }

  string(buf) {
    const huffman = buf[this.pos] & 0x80;
    const length = this.integer(buf, 7);
    const start = this.pos;
    this.pos += length;
    return huffman ? huffmanDecode(buf, start, this.pos) : buf.latin1Slice(start, this.pos);
  }
}

function frameHeader(out, at, length, type, flags, stream) {
  out[at] = length >>> 16;
  out[at + 1] = (length >>> 8) & 0xff;
  out[at + 2] = length & 0xff;
  out[at + 3] = type;
  out[at + 4] = flags;
  out.writeUInt32BE(stream, at + 5);
  return at + FRAME_HEADER;
}

function control(type, flags, stream, payload) {
  const out = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
  frameHeader(out, 0, payload.length, type, flags, stream);
  payload.copy(out, FRAME_HEADER);
  return out;
}

function u32(value) {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(value);
  return b;
}

const ANSWER_BYTES = 3 * FRAME_HEADER + RESPONSE_HEADERS.length + FRAMED.length + RESPONSE_TRAILERS.length;

class Connection {
  socket;
  hpack = new Hpack();
  pending = undefined; // bytes of an incomplete frame
  preface = false;
  streams = new Map(); // id → { path, chunks }
  block = undefined; // [stream, flags, Buffer[]] of a header block awaiting CONTINUATION
  received = 0; // connection receive window consumed since the last top-up
  sendWindow = 65535;
  out = [];
  answers = []; // stream ids answered in this read

  constructor(socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    const settings = Buffer.allocUnsafe(6);
    settings.writeUInt16BE(SETTINGS_INITIAL_WINDOW_SIZE, 0);
    settings.writeUInt32BE(STREAM_WINDOW, 2);
    socket.write(Buffer.concat([control(SETTINGS, 0, 0, settings), control(WINDOW_UPDATE, 0, 0, u32(CONNECTION_WINDOW - 65535))]));
    socket.on('data', (chunk) => this.read(chunk));
    socket.on('error', () => socket.destroy());
  }

  read(chunk) {
    let buf = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
    let at = 0;
    if (!this.preface) {
      if (buf.length < PREFACE.length) return void (this.pending = buf);
      if (!buf.subarray(0, PREFACE.length).equals(PREFACE)) return this.socket.destroy();
      this.preface = true;
      at = PREFACE.length;
    }
    try {
      while (buf.length - at >= FRAME_HEADER) {
        const length = (buf[at] << 16) | (buf[at + 1] << 8) | buf[at + 2];
        if (buf.length - at < FRAME_HEADER + length) break;
        const type = buf[at + 3];
        const flags = buf[at + 4];
        const stream = buf.readUInt32BE(at + 5) & 0x7fffffff;
        this.frame(type, flags, stream, buf, at + FRAME_HEADER, at + FRAME_HEADER + length);
        at += FRAME_HEADER + length;
      }
    } catch (err) {
      // A connection error (RFC 9113 §5.4.1): GOAWAY with PROTOCOL_ERROR (or COMPRESSION_ERROR) and close.
      const payload = Buffer.alloc(8);
      payload.writeUInt32BE(err.message.startsWith('HPACK') || err.message.includes('Huffman') ? 0x9 : 0x1, 4);
      this.socket.end(control(GOAWAY, 0, 0, payload));
      return;
    }
    this.pending = at === buf.length ? undefined : buf.subarray(at);
    this.flush();
  }

  frame(type, flags, stream, buf, start, end) {
    if (this.block !== undefined && type !== CONTINUATION) throw new Error('expected CONTINUATION');
    switch (type) {
      case DATA: {
        this.received += end - start;
        if (flags & PADDED) end -= buf[start++];
        const call = this.streams.get(stream);
        if (call !== undefined) {
          call.chunks.push(buf.subarray(start, end));
          if (flags & END_STREAM) this.answer(stream, call);
        }
        break;
      }
      case HEADERS: {
        if (flags & PADDED) end -= buf[start++];
        if (flags & PRIORITY) start += 5;
        if (flags & END_HEADERS) this.headers(stream, flags, buf, start, end);
        else this.block = [stream, flags, [Buffer.from(buf.subarray(start, end))]];
        break;
      }
      case CONTINUATION: {
        if (this.block === undefined || this.block[0] !== stream) throw new Error('unexpected CONTINUATION');
        this.block[2].push(Buffer.from(buf.subarray(start, end)));
        if (flags & END_HEADERS) {
          const [id, first, parts] = this.block;
          this.block = undefined;
          const whole = Buffer.concat(parts);
          this.headers(id, first, whole, 0, whole.length);
        }
        break;
      }
      case RST_STREAM:
        this.streams.delete(stream);
        break;
      case SETTINGS:
        if (flags & ACK) break;
        // Nothing the client sets binds these answers: the encoder never indexes (so the client's
        // table size does not matter), and a stream's 7 bytes fit any initial window and frame size.
        this.out.push(control(SETTINGS, ACK, 0, Buffer.alloc(0)));
        break;
      case PING:
        if (!(flags & ACK)) this.out.push(control(PING, ACK, 0, buf.subarray(start, end)));
        break;
      case GOAWAY:
        this.socket.end();
        break;
      case WINDOW_UPDATE:
        if (stream === 0) this.sendWindow += buf.readUInt32BE(start) & 0x7fffffff;
        break;
      case PUSH_PROMISE:
        throw new Error('a client sent PUSH_PROMISE');
      default:
        break; // PRIORITY and unknown frame types are ignored
    }
  }

  headers(stream, flags, buf, start, end) {
    const fields = this.hpack.decode(buf, start, end);
    let path = '';
    for (const [name, value] of fields) if (name === ':path') path = value;
    const call = { path, chunks: [] };
    this.streams.set(stream, call);
    if (flags & END_STREAM) this.answer(stream, call);
  }

  answer(stream, call) {
    this.streams.delete(stream);
    this.answers.push(stream);
  }

  flush() {
    // The connection's send window binds the answers' DATA: the rest wait for a WINDOW_UPDATE.
    const sendable = Math.min(this.answers.length, Math.floor(this.sendWindow / FRAMED.length));
    const answers = this.answers.splice(0, sendable);
    if (this.received >= CONNECTION_WINDOW / 2) {
      this.out.push(control(WINDOW_UPDATE, 0, 0, u32(this.received)));
      this.received = 0;
    }
    if (answers.length === 0 && this.out.length === 0) return;
    const out = Buffer.allocUnsafe(answers.length * ANSWER_BYTES);
    let at = 0;
    for (const stream of answers) {
      at = frameHeader(out, at, RESPONSE_HEADERS.length, HEADERS, END_HEADERS, stream);
      at += RESPONSE_HEADERS.copy(out, at);
      at = frameHeader(out, at, FRAMED.length, DATA, 0, stream);
      at += FRAMED.copy(out, at);
      at = frameHeader(out, at, RESPONSE_TRAILERS.length, HEADERS, END_HEADERS | END_STREAM, stream);
      at += RESPONSE_TRAILERS.copy(out, at);
    }
    this.sendWindow -= answers.length * FRAMED.length;
    this.out.push(out);
    this.socket.write(this.out.length === 1 ? out : Buffer.concat(this.out));
    this.out = [];
  }
}

net.createServer((socket) => new Connection(socket)).listen(port, '127.0.0.1', () => console.log('listening'));
process.on('SIGTERM', () => process.exit(0));
