import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import { ACK, END_HEADERS, END_STREAM, FRAME_HEADER, H2Error, MAX_WINDOW, PADDED, PRIORITY } from './frames.js';
import { FrameOut } from './frame-out.js';
import { encodeHeaders, HpackDecoder, HpackError, type HeaderField } from './hpack.js';
import { headerBlock, ServerStream } from './stream.js';
import { StreamTable } from './stream-table.js';
import { EVENT_LOOP_TURN, type TurnBudget } from './turn-budget.js';

/**
 * The server side of HTTP/2 (RFC 9113) over one socket, as much as gRPC needs: streams with
 * flow control both ways, HPACK, SETTINGS, PING (answered, and sent as keepalive), GOAWAY
 * (received, and sent on shutdown or when idle), RST_STREAM, CONTINUATION. No server push, no
 * priorities (PRIORITY frames are read and ignored, as RFC 9113 allows).
 *
 * Why not node:http2: per unary call it costs ~26-32 µs of CPU on this project's benchmark machine
 * (a Duplex stream object, a header object and several C++ → JavaScript calls per stream, and an
 * external string per request header value that only a major GC finalizes), where this costs a
 * few (BENCHMARKS.md, "The floor of one thread"). Each stream is handed to the same listener as
 * node:http2's streams (grpc-js' handler behind Roster's unary fast path) as an object with the
 * part of node:http2's `ServerHttp2Stream` they use.
 */

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

const enum Frame {
  Data = 0x0,
  Headers = 0x1,
  Priority = 0x2,
  RstStream = 0x3,
  Settings = 0x4,
  PushPromise = 0x5,
  Ping = 0x6,
  Goaway = 0x7,
  WindowUpdate = 0x8,
  Continuation = 0x9,
}

/** Not a wire flag: marks a header block whose stream declared a dependency on itself. */
const SELF_DEPENDENT = 0x100;

const enum Setting {
  HeaderTableSize = 0x1,
  EnablePush = 0x2,
  MaxConcurrentStreams = 0x3,
  InitialWindowSize = 0x4,
  MaxFrameSize = 0x5,
  MaxHeaderListSize = 0x6,
}

const DEFAULT_WINDOW = 65_535;
/** The largest frame payload this side reads (SETTINGS_MAX_FRAME_SIZE left at its default). */
const MAX_FRAME_SIZE = 16_384;
/** DATA bytes framed per write to the socket: past this, the rest waits for the socket to drain. */
const MAX_FLUSH_BYTES = 1024 * 1024;
/**
 * Bytes the socket may hold unsent before the client counts as not reading at all. DATA waits
 * for the socket to drain, so only frames this side must answer (PING and SETTINGS
 * acknowledgements) can pile up there: a client that floods them and never reads is cut.
 */
const MAX_UNSENT_BYTES = 16 * 1024 * 1024;
/** Streams the client may reset per second before the connection is closed (the "rapid reset" attack, CVE-2023-44487). */
const MAX_RESETS_PER_SECOND = 1000;

export interface Http2ConnectionOptions {
  /** Streams open at once; one more is refused (RST_STREAM REFUSED_STREAM). */
  readonly maxConcurrentStreams: number;
  /** Each stream's receive window, topped up as its data is read. Default 1 MiB. */
  readonly streamWindow?: number;
  /** The connection's receive window, topped up as data arrives. Default 16 MiB. */
  readonly connectionWindow?: number;
  /** A request's header list (RFC 9113 §6.5.2 sizes); a larger one is answered 431 and reset. Default 64 KiB. */
  readonly maxHeaderListBytes?: number;
  /** PING the client this often, and close the connection when no answer comes within `keepaliveTimeoutMs`; 0: never. */
  readonly keepaliveMs?: number;
  readonly keepaliveTimeoutMs?: number;
  /** Close the connection (GOAWAY) after this long without a stream; 0: never. */
  readonly idleMs?: number;
  /** Bounds the reading done in one turn of the event loop, over every connection sharing it. */
  readonly turn?: TurnBudget;
  /** Every stream the client opens, with its request headers. */
  readonly onStream: (stream: ServerStream, headers: IncomingHttpHeaders) => void;
}

/**
 * One HTTP/2 connection. `close()` asks the client to go away (GOAWAY) and ends the socket once
 * the open streams are done; `destroy()` cuts everything.
 */
export class Http2Connection {
  /** node:http2's name for what a stream's `session.socket` is. */
  readonly socket: Socket;
  readonly #options: Required<Omit<Http2ConnectionOptions, 'onStream'>> & Pick<Http2ConnectionOptions, 'onStream'>;
  readonly #decoder = new HpackDecoder();
  readonly #headerReader = new HeaderReader();
  readonly #streams = new StreamTable<ServerStream>();
  /**
   * Streams with data waiting for a window, in the order they started waiting; a stream
   * forgotten meanwhile stays until the next pump passes it (its `_waiting` is false). An
   * array and a flag, not a Set: a Set with streams coming and going rehashed its table every
   * few streams, in V8's old generation once the connection was old.
   */
  readonly #waiting: ServerStream[] = [];
  #preface = false;
  #partial: Buffer | undefined;
  #block: { readonly stream: number; readonly flags: number; readonly parts: Buffer[]; bytes: number } | undefined;
  #lastStreamId = 0;
  #goawaySent = false;
  #closed = false;
  #failed = false;
  /** Receive side: connection window bytes used since the last WINDOW_UPDATE. */
  #received = 0;
  #receiveWindow: number;
  /** Send side. */
  #sendWindow = DEFAULT_WINDOW;
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxFrame = MAX_FRAME_SIZE;
  readonly #out = new FrameOut();
  #resets = 0;
  #resetsSince = 0;
  #outCallbacks: Array<(err?: Error | null) => void> = [];
  #flushQueued = false;
  #reading = false;
  #congested = false;
  #keepalive: NodeJS.Timeout | undefined;
  #pingTimeout: NodeJS.Timeout | undefined;
  #idle: NodeJS.Timeout | undefined;

  constructor(socket: Socket, options: Http2ConnectionOptions) {
    this.socket = socket;
    this.#options = {
      streamWindow: 1 << 20,
      connectionWindow: 16 << 20,
      maxHeaderListBytes: 64 * 1024,
      keepaliveMs: 0,
      keepaliveTimeoutMs: 20_000,
      idleMs: 0,
      turn: EVENT_LOOP_TURN,
      ...options,
    };
    this.#receiveWindow = this.#options.connectionWindow;
    socket.setNoDelay(true);
    const settings = Buffer.allocUnsafe(12);
    settings.writeUInt16BE(Setting.MaxConcurrentStreams, 0);
    settings.writeUInt32BE(this.#options.maxConcurrentStreams, 2);
    settings.writeUInt16BE(Setting.InitialWindowSize, 6);
    settings.writeUInt32BE(this.#options.streamWindow, 8);
    this.#frame(Frame.Settings, 0, 0, settings);
    if (this.#receiveWindow > DEFAULT_WINDOW) this.#windowUpdate(0, this.#receiveWindow - DEFAULT_WINDOW);
    this.#flush();
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    socket.on('drain', () => {
      this.#congested = false;
      this.#pump();
      this.#flush();
    });
    socket.on('error', () => socket.destroy());
    socket.once('close', () => this.#onSocketClose());
    if (this.#options.keepaliveMs > 0) {
      this.#keepalive = setInterval(() => this.#ping(), this.#options.keepaliveMs);
      this.#keepalive.unref();
    }
    this.#armIdle();
  }

  /** Whether the socket is gone (node:http2's session property of that name). */
  get destroyed(): boolean {
    return this.#closed;
  }

  /** Streams open now. */
  get streams(): number {
    return this.#streams.size;
  }

  /** Asks the client to go away: no new stream is taken; the socket ends when the open ones are done. */
  close(): void {
    if (this.#closed) return;
    this.#goaway(H2Error.NoError);
    this.#endIfDone();
  }

  destroy(): void {
    this.socket.destroy();
  }

  // ---- reading ----

  #read(chunk: Buffer): void {
    // After a connection error nothing more is read: the socket is ending.
    if (this.#failed) return;
    this.#options.turn.reading(this.socket);
    const buf = this.#partial === undefined ? chunk : Buffer.concat([this.#partial, chunk]);
    this.#partial = undefined;
    let at = 0;
    if (!this.#preface) {
      const have = Math.min(buf.length, PREFACE.length);
      if (!buf.subarray(0, have).equals(PREFACE.subarray(0, have))) return this.#connectionError(H2Error.ProtocolError, 'not an HTTP/2 connection preface');
      if (buf.length < PREFACE.length) {
        this.#partial = buf;
        return;
      }
      this.#preface = true;
      at = PREFACE.length;
    }
    this.#reading = true;
    try {
      while (buf.length - at >= FRAME_HEADER && !this.#closed) {
        const length = (buf[at]! << 16) | (buf[at + 1]! << 8) | buf[at + 2]!;
        if (length > MAX_FRAME_SIZE) return this.#connectionError(H2Error.FrameSizeError, `a frame of ${length} bytes, above ${MAX_FRAME_SIZE}`);
        if (buf.length - at < FRAME_HEADER + length) break;
        const type = buf[at + 3]!;
        const flags = buf[at + 4]!;
        const stream = buf.readUInt32BE(at + 5) & 0x7fffffff;
        const payload = buf.subarray(at + FRAME_HEADER, at + FRAME_HEADER + length);
        at += FRAME_HEADER + length;
        const problem = this.#frameIn(type, flags, stream, payload);
        if (problem !== undefined) return this.#connectionError(problem[0], problem[1]);
      }
    } catch (err) {
      if (err instanceof HpackError) return this.#connectionError(H2Error.CompressionError, err.message);
      throw err;
    } finally {
      this.#reading = false;
    }
    if (at < buf.length) this.#partial = buf.subarray(at);
    this.#pump();
    this.#flush();
  }

  /** Handles one frame; returns a connection error as [code, reason], or undefined. */
  #frameIn(type: number, flags: number, id: number, payload: Buffer): [H2Error, string] | undefined {
    if (this.#block !== undefined && type !== Frame.Continuation) return [H2Error.ProtocolError, 'a header block was interrupted'];
    switch (type) {
      case Frame.Data:
        return this.#dataIn(flags, id, payload);
      case Frame.Headers:
        return this.#headersIn(flags, id, payload);
      case Frame.Continuation: {
        const block = this.#block;
        if (block === undefined || block.stream !== id) return [H2Error.ProtocolError, 'CONTINUATION without a header block to continue'];
        block.parts.push(Buffer.from(payload));
        block.bytes += payload.length;
        if (block.bytes > 2 * this.#options.maxHeaderListBytes) return [H2Error.EnhanceYourCalm, 'header block too large'];
        if ((flags & END_HEADERS) === 0) return undefined;
        this.#block = undefined;
        return this.#headerBlock(block.stream, block.flags, Buffer.concat(block.parts, block.bytes));
      }
      case Frame.Priority:
        if (id === 0) return [H2Error.ProtocolError, 'PRIORITY on stream 0'];
        if (payload.length !== 5) this.#reset(id, H2Error.FrameSizeError);
        else if ((payload.readUInt32BE(0) & 0x7fffffff) === id) this.#reset(id, H2Error.ProtocolError); // depends on itself
        return undefined;
      case Frame.RstStream: {
        if (id === 0) return [H2Error.ProtocolError, 'RST_STREAM on stream 0'];
        if (payload.length !== 4) return [H2Error.FrameSizeError, 'RST_STREAM of other than 4 bytes'];
        if (id > this.#lastStreamId) return [H2Error.ProtocolError, 'RST_STREAM on an idle stream'];
        const stream = this.#streams.get(id);
        if (stream === undefined) return undefined;
        const now = performance.now();
        if (now - this.#resetsSince > 1000) {
          this.#resetsSince = now;
          this.#resets = 0;
        }
        if (++this.#resets > MAX_RESETS_PER_SECOND) return [H2Error.EnhanceYourCalm, 'too many streams reset'];
        stream._closed(payload.readUInt32BE(0));
        return undefined;
      }
      case Frame.Settings:
        return this.#settingsIn(flags, id, payload);
      case Frame.PushPromise:
        return [H2Error.ProtocolError, 'a client sent PUSH_PROMISE'];
      case Frame.Ping:
        if (id !== 0) return [H2Error.ProtocolError, 'PING on a stream'];
        if (payload.length !== 8) return [H2Error.FrameSizeError, 'PING of other than 8 bytes'];
        if (flags & ACK) {
          clearTimeout(this.#pingTimeout);
          this.#pingTimeout = undefined;
        } else this.#frame(Frame.Ping, ACK, 0, Buffer.from(payload));
        return undefined;
      case Frame.Goaway:
        if (id !== 0) return [H2Error.ProtocolError, 'GOAWAY on a stream'];
        // The client opens no more streams; those open finish, then the socket ends.
        this.#goaway(H2Error.NoError);
        this.#endIfDone();
        return undefined;
      case Frame.WindowUpdate: {
        if (payload.length !== 4) return [H2Error.FrameSizeError, 'WINDOW_UPDATE of other than 4 bytes'];
        const increment = payload.readUInt32BE(0) & 0x7fffffff;
        if (id === 0) {
          if (increment === 0) return [H2Error.ProtocolError, 'WINDOW_UPDATE of 0'];
          this.#sendWindow += increment;
          if (this.#sendWindow > MAX_WINDOW) return [H2Error.FlowControlError, 'connection window above 2^31-1'];
          return undefined;
        }
        const stream = this.#streams.get(id);
        if (stream === undefined) return id > this.#lastStreamId ? [H2Error.ProtocolError, 'WINDOW_UPDATE on an idle stream'] : undefined;
        if (increment === 0) this.#reset(id, H2Error.ProtocolError);
        else if (!stream._window(increment)) this.#reset(id, H2Error.FlowControlError);
        return undefined;
      }
      default:
        return undefined; // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  #dataIn(flags: number, id: number, payload: Buffer): [H2Error, string] | undefined {
    if (id === 0) return [H2Error.ProtocolError, 'DATA on stream 0'];
    if (id > this.#lastStreamId) return [H2Error.ProtocolError, 'DATA on an idle stream'];
    this.#received += payload.length;
    if (this.#received > this.#receiveWindow) return [H2Error.FlowControlError, 'DATA beyond the connection window'];
    // The connection's window is given back as data arrives; each stream's as it is read.
    if (this.#received >= this.#receiveWindow / 2) {
      this.#windowUpdate(0, this.#received);
      this.#received = 0;
    }
    let data = payload;
    if (flags & PADDED) {
      if (payload.length === 0 || payload[0]! >= payload.length) return [H2Error.ProtocolError, 'DATA padding longer than the frame'];
      data = payload.subarray(1, payload.length - payload[0]!);
    }
    const stream = this.#streams.get(id);
    if (stream === undefined) {
      // A closed stream (RFC 9113 §5.1): its window is spent all the same.
      this.#reset(id, H2Error.StreamClosed);
      return undefined;
    }
    const refused = stream._data(data, payload.length, (flags & END_STREAM) !== 0);
    if (refused !== undefined) this.#reset(id, refused);
    return undefined;
  }

  #headersIn(flags: number, id: number, payload: Buffer): [H2Error, string] | undefined {
    if (id === 0) return [H2Error.ProtocolError, 'HEADERS on stream 0'];
    let start = 0;
    let end = payload.length;
    if (flags & PADDED) {
      if (payload.length === 0) return [H2Error.ProtocolError, 'padded HEADERS without a pad length'];
      end -= payload[0]!;
      start = 1;
    }
    let selfDependent = false;
    if (flags & PRIORITY) {
      selfDependent = start + 4 <= end && (payload.readUInt32BE(start) & 0x7fffffff) === id;
      start += 5;
    }
    if (start > end) return [H2Error.ProtocolError, 'HEADERS padding longer than the frame'];
    const fragment = payload.subarray(start, end);
    const blockFlags = flags | (selfDependent ? SELF_DEPENDENT : 0);
    if (flags & END_HEADERS) return this.#headerBlock(id, blockFlags, fragment);
    this.#block = { stream: id, flags: blockFlags, parts: [Buffer.from(fragment)], bytes: fragment.length };
    return undefined;
  }

  #headerBlock(id: number, flags: number, block: Buffer): [H2Error, string] | undefined {
    // Decoded whatever becomes of the stream: the dynamic table must follow every block.
    const headers = this.#headerReader.read(this.#decoder.decode(block), this.#options.maxHeaderListBytes);
    const existing = this.#streams.get(id);
    if (existing !== undefined) {
      // Trailers from the client: gRPC sends none, but they may end the request.
      if ((flags & END_STREAM) === 0) {
        this.#reset(id, H2Error.ProtocolError);
        return undefined;
      }
      const refused = existing._data(Buffer.alloc(0), 0, true);
      if (refused !== undefined) this.#reset(id, refused);
      return undefined;
    }
    if (id <= this.#lastStreamId) return id % 2 === 0 ? [H2Error.ProtocolError, 'a client opened an even-numbered stream'] : [H2Error.StreamClosed, 'HEADERS on a closed stream'];
    if (id % 2 === 0) return [H2Error.ProtocolError, 'a client opened an even-numbered stream'];
    this.#lastStreamId = id;
    if (this.#goawaySent) {
      this.#reset(id, H2Error.RefusedStream);
      return undefined;
    }
    if (this.#streams.size >= this.#options.maxConcurrentStreams) {
      this.#reset(id, H2Error.RefusedStream);
      return undefined;
    }
    if (flags & SELF_DEPENDENT) {
      this.#reset(id, H2Error.ProtocolError);
      return undefined;
    }
    if (typeof headers === 'string') {
      if (headers === TOO_LARGE) {
        // A complete answer; a client still sending is then told to stop, as after any answer.
        this.#frame(Frame.Headers, END_HEADERS | END_STREAM, id, TOO_LARGE_BLOCK);
        if ((flags & END_STREAM) === 0) this.#reset(id, H2Error.NoError);
      } else this.#reset(id, H2Error.ProtocolError);
      return undefined;
    }
    // gRPC sends no content-length; one that is sent must match the data (RFC 9113 §8.1.1).
    const declared = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
    if ((flags & END_STREAM) !== 0 && declared !== undefined && declared !== 0) {
      this.#reset(id, H2Error.ProtocolError);
      return undefined;
    }
    const stream = new ServerStream(this, id, this.#peerInitialWindow, this.#options.streamWindow, (flags & END_STREAM) !== 0, declared);
    this.#streams.set(id, stream);
    clearTimeout(this.#idle);
    this.#idle = undefined;
    this.#options.onStream(stream, headers);
    return undefined;
  }

  #settingsIn(flags: number, id: number, payload: Buffer): [H2Error, string] | undefined {
    if (id !== 0) return [H2Error.ProtocolError, 'SETTINGS on a stream'];
    if (flags & ACK) return payload.length === 0 ? undefined : [H2Error.FrameSizeError, 'SETTINGS ACK with a payload'];
    if (payload.length % 6 !== 0) return [H2Error.FrameSizeError, 'SETTINGS of other than a multiple of 6 bytes'];
    for (let at = 0; at < payload.length; at += 6) {
      const value = payload.readUInt32BE(at + 2);
      switch (payload.readUInt16BE(at)) {
        case Setting.EnablePush:
          if (value > 1) return [H2Error.ProtocolError, 'SETTINGS_ENABLE_PUSH other than 0 or 1'];
          break;
        case Setting.InitialWindowSize: {
          if (value > MAX_WINDOW) return [H2Error.FlowControlError, 'SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1'];
          const delta = value - this.#peerInitialWindow;
          this.#peerInitialWindow = value;
          for (const stream of this.#streams.values()) if (!stream._window(delta)) return [H2Error.FlowControlError, 'a stream window above 2^31-1'];
          break;
        }
        case Setting.MaxFrameSize:
          if (value < MAX_FRAME_SIZE || value > 2 ** 24 - 1) return [H2Error.ProtocolError, 'SETTINGS_MAX_FRAME_SIZE out of range'];
          this.#peerMaxFrame = value;
          break;
        default:
          // HEADER_TABLE_SIZE: the encoder never indexes, so any table size suits it.
          // MAX_CONCURRENT_STREAMS (for pushes) and MAX_HEADER_LIST_SIZE: answers stay small.
          break;
      }
    }
    this.#frame(Frame.Settings, ACK, 0, Buffer.alloc(0));
    return undefined;
  }

  // ---- writing (called by streams) ----

  /** A stream's header block: HEADERS, and CONTINUATION frames when it is larger than the peer's frame size. */
  _headers(id: number, headers: OutgoingHttpHeaders, endStream: boolean): void {
    const block = headerBlock(headers);
    const max = this.#peerMaxFrame;
    if (block.length <= max) {
      this.#frame(Frame.Headers, END_HEADERS | (endStream ? END_STREAM : 0), id, block);
      return;
    }
    this.#frame(Frame.Headers, endStream ? END_STREAM : 0, id, block.subarray(0, max));
    for (let at = max; at < block.length; at += max) this.#frame(Frame.Continuation, at + max >= block.length ? END_HEADERS : 0, id, block.subarray(at, at + max));
  }

  _reset(id: number, code: H2Error): void {
    this.#reset(id, code);
  }

  /** A stream has data waiting (or an end to send after it). */
  _ready(stream: ServerStream): void {
    // A stream already forgotten (closed) has nothing more to send.
    if (!stream._waiting && this.#streams.get(stream.id) === stream) {
      stream._waiting = true;
      this.#waiting.push(stream);
    }
    if (!this.#reading) this.#schedule();
  }

  /** A stream of ours is closed: forgotten, and the connection may go idle or end. */
  _forget(stream: ServerStream): void {
    if (this.#streams.get(stream.id) !== stream) return;
    this.#streams.delete(stream.id);
    stream._waiting = false;
    this.#armIdle();
    this.#endIfDone();
  }

  /** A stream read `bytes` of its data: gives them back to the client as window. */
  _consumed(id: number, bytes: number): void {
    this.#windowUpdate(id, bytes);
  }

  _flushSoon(): void {
    if (!this.#reading) this.#schedule();
  }

  /** Sends what the windows allow of the waiting streams' data, and their ends. */
  #pump(): void {
    const waiting = this.#waiting;
    if (waiting.length === 0 || this.#closed) return;
    // Streams still waiting are moved up to `kept` as it goes; one that becomes ready while it
    // goes is pushed at the end and reached in this pass too.
    let kept = 0;
    let at = 0;
    for (; at < waiting.length; at++) {
      const stream = waiting[at]!;
      if (!stream._waiting) continue;
      if (this.#congested || this.#out.bytes > MAX_FLUSH_BYTES) break;
      const done = stream._send(this.#sendWindow, this.#peerMaxFrame, (flags, payload, callbacks) => {
        this.#sendWindow -= payload.length;
        this.#frame(Frame.Data, flags, stream.id, payload);
        for (const callback of callbacks) this.#outCallbacks.push(callback);
      });
      if (done) stream._waiting = false;
      else waiting[kept++] = stream;
      if (this.#sendWindow <= 0) {
        at++;
        break;
      }
    }
    // The ones not reached keep their places after those kept.
    for (; at < waiting.length; at++) if (waiting[at]!._waiting) waiting[kept++] = waiting[at]!;
    waiting.length = kept;
  }

  #schedule(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    process.nextTick(() => {
      this.#flushQueued = false;
      this.#pump();
      this.#flush();
    });
  }

  #frame(type: Frame, flags: number, id: number, payload: Buffer): void {
    this.#out.frame(type, flags, id, payload);
    if (!this.#reading) this.#schedule();
  }

  #flush(): void {
    if (this.#out.bytes === 0 || this.#closed) return;
    const out = this.#out.take();
    const callbacks = this.#outCallbacks;
    this.#outCallbacks = [];
    const socket = this.socket;
    socket.cork();
    for (const buf of out) socket.write(buf);
    socket.uncork();
    if (socket.writableNeedDrain) this.#congested = true;
    const unread = socket.writableLength > MAX_UNSENT_BYTES ? new Error('the client reads nothing') : undefined;
    if (unread !== undefined) socket.destroy();
    // As node:http2 does, a write's callback runs once its bytes are handed to the socket.
    for (const callback of callbacks) callback(unread);
    if (unread === undefined && !this.#congested && this.#waiting.length > 0) this.#schedule();
  }

  #windowUpdate(id: number, increment: number): void {
    if (increment <= 0 || this.#closed) return;
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32BE(increment, 0);
    this.#frame(Frame.WindowUpdate, 0, id, payload);
  }

  #reset(id: number, code: H2Error): void {
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32BE(code, 0);
    this.#frame(Frame.RstStream, 0, id, payload);
    this.#streams.get(id)?._closed(code);
  }

  #goaway(code: H2Error, reason?: string): void {
    if (this.#goawaySent && code === H2Error.NoError) return;
    this.#goawaySent = true;
    const text = reason === undefined ? Buffer.alloc(0) : Buffer.from(reason);
    const payload = Buffer.allocUnsafe(8 + text.length);
    payload.writeUInt32BE(this.#lastStreamId, 0);
    payload.writeUInt32BE(code, 4);
    text.copy(payload, 8);
    this.#frame(Frame.Goaway, 0, 0, payload);
  }

  #connectionError(code: H2Error, reason: string): void {
    this.#failed = true;
    this.#goaway(code, reason);
    this.#flush();
    this.socket.end();
    for (const stream of this.#streams.values()) stream._closed(H2Error.Cancel);
    // A client that never closes its side is cut after a moment.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  #endIfDone(): void {
    if (this.#goawaySent && this.#streams.size === 0 && !this.#closed) {
      this.#flush();
      this.socket.end();
    }
  }

  #ping(): void {
    if (this.#pingTimeout !== undefined || this.#closed) return;
    this.#frame(Frame.Ping, 0, 0, Buffer.alloc(8));
    this.#pingTimeout = setTimeout(() => this.socket.destroy(), this.#options.keepaliveTimeoutMs);
    this.#pingTimeout.unref();
  }

  #armIdle(): void {
    if (this.#options.idleMs <= 0 || this.#streams.size > 0 || this.#idle !== undefined || this.#closed) return;
    this.#idle = setTimeout(() => {
      this.#idle = undefined;
      if (this.#streams.size === 0) this.close();
    }, this.#options.idleMs);
    this.#idle.unref();
  }

  #onSocketClose(): void {
    this.#closed = true;
    clearInterval(this.#keepalive);
    clearTimeout(this.#pingTimeout);
    clearTimeout(this.#idle);
    const callbacks = this.#outCallbacks;
    this.#outCallbacks = [];
    this.#out.take();
    const gone = new Error('the connection closed');
    for (const callback of callbacks) callback(gone);
    for (const stream of this.#streams.values()) stream._closed(H2Error.Cancel);
  }
}

const TOO_LARGE = 'too large';
const UPPER_CASE = /[A-Z]/;
const REQUEST_PSEUDO_HEADERS = new Set([':method', ':scheme', ':authority', ':path']);
/** Fields HTTP/2 forbids (RFC 9113 §8.2.2): they belong to HTTP/1.1 connections. */
const CONNECTION_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
const TOO_LARGE_BLOCK = encodeHeaders([[':status', '431']]);

/** What a request may do with a header name (RFC 9113 §8.2-8.3): see {@link nameKind}. */
const MALFORMED = 0;
const PSEUDO = 1;
const REGULAR = 2;
/** A name Object.prototype holds (`constructor`, `__proto__`): see {@link requestHeaders}. */
const INHERITED = 3;
/** Each name's kind, as requests on every connection repeat the same few names; emptied when full. */
const nameKinds = new Map<string, number>();
const NAME_KINDS_MAX = 1024;

function nameKind(name: string): number {
  let kind = nameKinds.get(name);
  if (kind === undefined) {
    if (name.length === 0 || UPPER_CASE.test(name)) kind = MALFORMED;
    else if (name.charCodeAt(0) === 0x3a) kind = REQUEST_PSEUDO_HEADERS.has(name) ? PSEUDO : MALFORMED;
    else if (CONNECTION_HEADERS.has(name)) kind = MALFORMED;
    else kind = name in Object.prototype ? INHERITED : REGULAR;
    if (nameKinds.size >= NAME_KINDS_MAX) nameKinds.clear();
    nameKinds.set(name, kind);
  }
  return kind;
}

/**
 * One connection's request header blocks as node:http2's headers objects (see
 * {@link requestHeaders}). A client's requests repeat one list of names, decoded from the same
 * HPACK table entries, with a value or two changed (a deadline, a path): a block with the
 * names of the last block read in full is a copy of that one's object, with the values that
 * differ set and checked; building the object field by field was ~2 % of a Register's CPU.
 */
class HeaderReader {
  /** The last block read in full (no repeated name, an ordinary object): its names, values and object. */
  #names: readonly string[] = [];
  #values: readonly string[] = [];
  #headers: Record<string, string> | undefined;

  read(fields: readonly HeaderField[], maxBytes: number): IncomingHttpHeaders | string {
    const template = this.#headers;
    if (template !== undefined && this.#sameNames(fields)) {
      const headers = { ...template };
      const values = this.#values;
      let bytes = 0;
      for (let i = 0; i < fields.length; i++) {
        const [name, value] = fields[i]!;
        bytes += name.length + value.length + 32;
        if (value === values[i]) continue;
        if (!valueAllowed(name, value)) return 'malformed';
        headers[name] = value;
      }
      return bytes > maxBytes ? TOO_LARGE : (headers as IncomingHttpHeaders);
    }
    const headers = requestHeaders(fields, maxBytes);
    if (typeof headers !== 'string' && Object.getPrototypeOf(headers) !== null && Object.keys(headers).length === fields.length) {
      this.#names = fields.map(([name]) => name);
      this.#values = fields.map(([, value]) => value);
      this.#headers = { ...(headers as Record<string, string>) };
    }
    return headers;
  }

  #sameNames(fields: readonly HeaderField[]): boolean {
    const names = this.#names;
    if (fields.length !== names.length) return false;
    for (let i = 0; i < fields.length; i++) if (fields[i]![0] !== names[i]) return false;
    return true;
  }
}

/** The checks of a request's header fields that depend on a value: `te` only `trailers`, `content-length` digits, `:path` not empty. */
function valueAllowed(name: string, value: string): boolean {
  if (name === 'te') return value === 'trailers';
  if (name === 'content-length') return CONTENT_LENGTH.test(value);
  return name !== ':path' || value !== '';
}
const CONTENT_LENGTH = /^\d{1,15}$/;

/** A request's header fields as node:http2 gives them (repeated names as arrays), or why not. */
function requestHeaders(fields: readonly HeaderField[], maxBytes: number): IncomingHttpHeaders | string {
  // A plain object: V8 keeps an Object.create(null) one in dictionary mode, ~0.2-0.4 µs and a
  // larger object per request. A name Object.prototype holds would read or set its property,
  // so a block with one moves to the null-prototype kind when it comes.
  let headers: Record<string, string | string[]> = {};
  let bytes = 0;
  let regular = false;
  for (const [name, value] of fields) {
    bytes += name.length + value.length + 32;
    const kind = nameKind(name);
    if (kind === MALFORMED || !valueAllowed(name, value)) return 'malformed';
    if (kind === PSEUDO) {
      // Request pseudo-headers only, before the other fields, once each.
      if (regular || headers[name] !== undefined) return 'malformed';
    } else {
      regular = true;
      if (kind === INHERITED && Object.getPrototypeOf(headers) !== null) headers = Object.assign(Object.create(null) as Record<string, string | string[]>, headers);
    }
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else headers[name] = [existing, value];
  }
  if (bytes > maxBytes) return TOO_LARGE;
  if (headers[':method'] === undefined || !headers[':path'] || headers[':scheme'] === undefined) return 'malformed';
  // Each value was checked as it came (valueAllowed); a repeated content-length is malformed too.
  if (Array.isArray(headers['content-length'])) return 'malformed';
  return headers as IncomingHttpHeaders;
}
