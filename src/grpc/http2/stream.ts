import { EventEmitter } from 'node:events';
import type { OutgoingHttpHeaders } from 'node:http2';
import type { Http2Connection } from './connection.js';
import { END_STREAM, H2Error, MAX_WINDOW } from './frames.js';
import { encodeHeaders, type HeaderField } from './hpack.js';

const ENCODED = Symbol('roster.encodedHeaderBlock');

/**
 * Headers sent on every call (a unary answer's, its trailers), encoded once: returns the object,
 * frozen, carrying its HPACK block, which {@link ServerStream.respond} and `sendTrailers` then
 * send as they are. node:http2's streams read it as any header object.
 */
export function constantHeaders<T extends OutgoingHttpHeaders>(headers: T): Readonly<T> {
  Object.defineProperty(headers, ENCODED, { value: encodeHeaders(fields(headers)) });
  return Object.freeze(headers);
}

/** A header object's HPACK block: the one {@link constantHeaders} keeps, or encoded now. */
export function headerBlock(headers: OutgoingHttpHeaders): Buffer {
  return (headers as { [ENCODED]?: Buffer })[ENCODED] ?? encodeHeaders(fields(headers));
}

/** What a stream's answer is written with: node:http2's `respond` options that gRPC servers use. */
export interface RespondOptions {
  readonly endStream?: boolean;
  readonly waitForTrailers?: boolean;
}

export type WriteCallback = (err?: Error | null) => void;

interface Pending {
  data: Buffer;
  readonly callback: WriteCallback | undefined;
}

/** `respond`'s options for {@link ServerStream.answer}: data and trailers follow, unasked. */
const ANSWER: RespondOptions = {};

export type DataSink = (flags: number, payload: Buffer, callbacks: readonly WriteCallback[]) => void;
const NO_CALLBACKS: readonly WriteCallback[] = [];

/**
 * What a unary call on Roster's fast path is told of its stream, by direct calls rather than
 * 'data' / 'end' / 'close' events: four listeners added and as many events emitted per call
 * were ~5 % of a Register's server CPU (BENCHMARKS.md).
 */
export interface UnaryReceiver {
  /** Request bytes, as they arrive. */
  received(chunk: Buffer): void;
  /** The client ended its side. */
  ended(): void;
  /** The stream is over: reset, the connection lost, or answered. */
  closed(): void;
}

/**
 * One stream, with the part of node:http2's `ServerHttp2Stream` that grpc-js' server and Roster's
 * unary fast path use: 'data' / 'end' / 'close' / 'wantTrailers' events, `pause()` and `resume()`
 * (a paused stream's window is not given back, so the client stops), `respond`, `write`, `end`,
 * `sendTrailers`, `close`, and `rstCode`, `closed`, `destroyed`, `session.socket`.
 */
export class ServerStream extends EventEmitter {
  readonly id: number;
  /** The connection, as node:http2's `session` (undefined once the stream is closed by a lost connection). */
  session: Http2Connection | undefined;
  rstCode = 0;
  closed = false;
  destroyed = false;
  headersSent = false;
  /** In its connection's queue of streams with data waiting (the connection's bookkeeping). */
  _waiting = false;
  readonly #connection: Http2Connection;
  #sendWindow: number;
  readonly #receiveWindow: number;
  /** What the client may still send before this side gives window back. */
  #receiveLeft: number;
  readonly #declaredLength: number | undefined;
  #receivedLength = 0;
  #unacknowledged = 0; // bytes read since the last stream WINDOW_UPDATE
  #remoteEnded: boolean;
  #endEmitted = false;
  #flowing: boolean | undefined;
  #buffered: Buffer[] = [];
  #deliverQueued = false;
  #queue: Pending[] = [];
  #queuedBytes = 0;
  #ending = false;
  #waitForTrailers = false;
  #trailers: OutgoingHttpHeaders | undefined;
  #localEnded = false;
  #unary: UnaryReceiver | undefined;

  constructor(connection: Http2Connection, id: number, sendWindow: number, receiveWindow: number, remoteEnded: boolean, declaredLength: number | undefined) {
    super();
    this.#declaredLength = declaredLength;
    this.#connection = connection;
    this.session = connection;
    this.id = id;
    this.#sendWindow = sendWindow;
    this.#receiveWindow = receiveWindow;
    this.#receiveLeft = receiveWindow;
    this.#remoteEnded = remoteEnded;
  }

  /** Node's streams start flowing when a 'data' listener is added (`once` calls `on`). */
  // biome-ignore lint/suspicious/noExplicitAny: EventEmitter's own signature, overridden
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    super.on(event, listener);
    if (event === 'data' && this.#flowing === undefined) this.resume();
    return this;
  }

  // biome-ignore lint/suspicious/noExplicitAny: EventEmitter's own signature, overridden
  override addListener(event: string | symbol, listener: (...args: any[]) => void): this {
    return this.on(event, listener);
  }

  pause(): this {
    this.#flowing = false;
    return this;
  }

  resume(): this {
    if (this.#flowing === true) return this;
    this.#flowing = true;
    if (this.#buffered.length > 0 || (this.#remoteEnded && !this.#endEmitted)) this.#deliverSoon();
    return this;
  }

  /** Hands the stream's request to `receiver` instead of events; it flows from now on. */
  receiveUnary(receiver: UnaryReceiver): void {
    this.#unary = receiver;
    this.resume();
  }

  /** A whole answer at once: headers, one DATA payload, trailers (no 'wantTrailers' asked). */
  answer(headers: OutgoingHttpHeaders, data: Buffer, trailers: OutgoingHttpHeaders): void {
    if (this.headersSent || this.closed) return;
    this.respond(headers, ANSWER);
    this.#trailers = trailers;
    this.end(data);
  }

  /** Sends the response headers; `endStream` makes them the whole answer (gRPC's trailers-only). */
  respond(headers: OutgoingHttpHeaders = {}, options: RespondOptions = {}): void {
    if (this.headersSent || this.closed) return;
    this.headersSent = true;
    this.#waitForTrailers = options.waitForTrailers === true;
    this.#connection._headers(this.id, headers, options.endStream === true);
    if (options.endStream === true) this.#localEnd();
  }

  write(chunk: Buffer | Uint8Array, encodingOrCallback?: BufferEncoding | WriteCallback, callback?: WriteCallback): boolean {
    const done = typeof encodingOrCallback === 'function' ? encodingOrCallback : callback;
    if (this.closed || this.#ending) {
      if (done !== undefined) process.nextTick(done, new Error('write after the stream ended'));
      return false;
    }
    if (!this.headersSent) this.respond({ ':status': 200 });
    const data = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.#queue.push({ data, callback: done });
    this.#queuedBytes += data.length;
    this.#connection._ready(this);
    return this.#queuedBytes < 65_536;
  }

  end(chunk?: Buffer | Uint8Array | (() => void), callback?: () => void): this {
    if (typeof chunk === 'function') return this.end(undefined, chunk);
    if (chunk !== undefined) this.write(chunk, callback);
    else if (callback !== undefined) this.once('finish', callback);
    if (this.#ending || this.closed) return this;
    if (!this.headersSent) this.respond({ ':status': 200 });
    this.#ending = true;
    this.#connection._ready(this);
    return this;
  }

  /** Trailers, after the data (node:http2: only from a 'wantTrailers' listener). */
  sendTrailers(headers: OutgoingHttpHeaders): void {
    if (this.closed || this.#localEnded) return;
    this.#trailers = headers;
    this.#connection._ready(this);
  }

  /** Resets the stream (RST_STREAM with `code`, default CANCEL). */
  close(code: number = H2Error.Cancel): void {
    if (this.closed) return;
    this.#connection._reset(this.id, code);
  }

  destroy(): this {
    this.close(H2Error.Cancel);
    return this;
  }

  // ---- called by the connection ----

  /** Data from the client; a stream error when the client broke the rules, else undefined. */
  _data(data: Buffer, frameBytes: number, end: boolean): H2Error | undefined {
    if (this.#remoteEnded) return H2Error.StreamClosed;
    if (this.closed) return undefined;
    this.#receiveLeft -= frameBytes;
    if (this.#receiveLeft < 0) return H2Error.FlowControlError;
    this.#receivedLength += data.length;
    const declared = this.#declaredLength;
    if (declared !== undefined && (this.#receivedLength > declared || (end && this.#receivedLength !== declared))) return H2Error.ProtocolError;
    if (frameBytes > data.length) this.#consumed(frameBytes - data.length); // padding is read at once
    if (data.length > 0) {
      if (this.#flowing === true && this.#buffered.length === 0) {
        this.#emitData(data);
        this.#consumed(data.length);
      } else {
        this.#buffered.push(data);
      }
    }
    if (end) {
      this.#remoteEnded = true;
      if (this.#flowing === true && this.#buffered.length === 0) this.#emitEnd();
    }
    return undefined;
  }

  /** The client's window for this stream grew (or shrank, by SETTINGS); false past 2^31-1. */
  _window(delta: number): boolean {
    this.#sendWindow += delta;
    if (this.#sendWindow > MAX_WINDOW) return false;
    if (delta > 0 && (this.#queue.length > 0 || this.#ending || this.#trailers !== undefined)) this.#connection._ready(this);
    return true;
  }

  /**
   * Sends what the windows allow; true when nothing more waits. The connection passes its own
   * window and the peer's frame size, and takes each DATA frame through `sink`.
   */
  _send(connectionWindow: number, maxFrame: number, sink: DataSink): boolean {
    if (this.closed) return true;
    let window = Math.min(connectionWindow, this.#sendWindow);
    const queue = this.#queue;
    while (queue.length > 0 && window > 0) {
      // Writes waiting together leave in one DATA frame (a stream of small messages, such as
      // renewal results, would otherwise cost its client a frame each), up to the frame size.
      const limit = Math.min(window, maxFrame);
      const parts: Buffer[] = [];
      const callbacks: WriteCallback[] = [];
      let size = 0;
      while (queue.length > 0 && size < limit) {
        const head = queue[0]!;
        const room = limit - size;
        if (head.data.length > room) {
          parts.push(head.data.subarray(0, room));
          head.data = head.data.subarray(room);
          size += room;
          break;
        }
        parts.push(head.data);
        size += head.data.length;
        if (head.callback !== undefined) callbacks.push(head.callback);
        queue.shift();
      }
      const endNow = queue.length === 0 && this.#ending && !this.#waitForTrailers && this.#trailers === undefined;
      sink(endNow ? END_STREAM : 0, parts.length === 1 ? parts[0]! : Buffer.concat(parts, size), callbacks);
      window -= size;
      this.#sendWindow -= size;
      this.#queuedBytes -= size;
      if (endNow) {
        this.#localEnd();
        return true;
      }
    }
    if (queue.length > 0) return false;
    if (this.#queuedBytes < 65_536 && this.listenerCount('drain') > 0) this.emit('drain');
    if (!this.#ending) return true;
    if (this.#trailers !== undefined) {
      const trailers = this.#trailers;
      this.#trailers = undefined;
      this.#connection._headers(this.id, trailers, true);
      this.#localEnd();
      return true;
    }
    if (this.#waitForTrailers) {
      this.#waitForTrailers = false;
      this.emit('wantTrailers');
      // A listener that answered at once is sent now; one that answers later calls sendTrailers then.
      return this.#trailers === undefined ? true : this._send(connectionWindow, maxFrame, sink);
    }
    // An end with no data left: an empty DATA frame carries END_STREAM.
    sink(END_STREAM, Buffer.alloc(0), NO_CALLBACKS);
    this.#localEnd();
    return true;
  }

  /** The stream is over: reset by either side (`code`), or the connection is gone. */
  _closed(code: number): void {
    if (this.closed) return;
    this.rstCode = code;
    if (this.#connection.destroyed) this.session = undefined;
    this.#finishClose();
  }

  // ---- internal ----

  #consumed(bytes: number): void {
    if (this.#remoteEnded) return;
    this.#unacknowledged += bytes;
    if (this.#unacknowledged >= this.#receiveWindow / 2) {
      this.#connection._consumed(this.id, this.#unacknowledged);
      this.#receiveLeft += this.#unacknowledged;
      this.#unacknowledged = 0;
    }
  }

  #deliverSoon(): void {
    if (this.#deliverQueued) return;
    this.#deliverQueued = true;
    process.nextTick(() => {
      this.#deliverQueued = false;
      this.#deliver();
    });
  }

  #deliver(): void {
    while (this.#flowing === true && this.#buffered.length > 0 && !this.closed) {
      const data = this.#buffered.shift()!;
      this.#emitData(data);
      this.#consumed(data.length);
    }
    if (this.#flowing === true && this.#buffered.length === 0 && this.#remoteEnded) this.#emitEnd();
    this.#connection._flushSoon();
  }

  #emitData(data: Buffer): void {
    if (this.#unary !== undefined) this.#unary.received(data);
    else this.emit('data', data);
  }

  #emitEnd(): void {
    if (this.#endEmitted) return;
    this.#endEmitted = true;
    if (this.#unary !== undefined) this.#unary.ended();
    else this.emit('end');
  }

  /** This side sent END_STREAM: with the client's, the stream is closed, whatever is left unread. */
  #localEnd(): void {
    this.#localEnded = true;
    this.emit('finish');
    // The answer is complete: a client still sending is told to stop (RFC 9113 §8.1).
    if (!this.#remoteEnded) this.#connection._reset(this.id, H2Error.NoError);
    else this.#finishClose();
  }

  #finishClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.destroyed = true;
    const queue = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#buffered = [];
    this.#connection._forget(this);
    process.nextTick(ServerStream.#emitClose, this, queue);
  }

  /** Writes that never left fail (an Error only when there are some: its stack trace is costly), then 'close'. */
  static #emitClose(this: void, stream: ServerStream, unsent: readonly Pending[]): void {
    if (unsent.some((p) => p.callback !== undefined)) {
      const gone = new Error('the stream closed before its data was sent');
      for (const { callback } of unsent) callback?.(gone);
    }
    stream.#unary?.closed();
    stream.emit('close');
  }
}

/** node:http2's outgoing header object as HPACK fields: pseudo-headers first, arrays as repeated fields. */
function fields(headers: OutgoingHttpHeaders): HeaderField[] {
  const pseudo: HeaderField[] = [];
  const regular: HeaderField[] = [];
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined) continue;
    const key = name.toLowerCase();
    const into = key.charCodeAt(0) === 0x3a ? pseudo : regular;
    if (Array.isArray(value)) for (const v of value) into.push([key, String(v)]);
    else into.push([key, String(value)]);
  }
  return pseudo.length === 0 ? regular : [...pseudo, ...regular];
}
