import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../core/clock.js';

type Call = grpc.ServerInterceptingCallInterface;
type Listener = Parameters<Call['start']>[0];
type ConnectionInfo = ReturnType<Call['getConnectionInfo']>;

export interface FlowControlOptions {
  /** Method paths (`/pkg.Service/Method`) of streams answering each request with one response. */
  readonly methods: ReadonlySet<string>;
  /** Requests a call may have read whose responses have not flushed; its reads wait beyond. */
  readonly window: number;
  /** A response that has waited this long for the peer's window cuts the call's connection. */
  readonly stallMs: number;
  /** Drives the stall timer (a test's fake clock). */
  readonly clock: Clock;
  /**
   * Closes the connection a stalled call is on. grpc-js has no per-stream reset on the server,
   * and a status cannot reach a peer that reads nothing (trailers queue behind the held data).
   */
  readonly cut: (connection: ConnectionInfo) => void;
  readonly logger: Logger;
}

/**
 * Request-for-response streams (Replicate: one result message per batch) read a request only
 * while fewer than `window` earlier ones still have a response waiting to flush into the
 * peer's HTTP/2 flow-control window. The port's HTTP/2 (src/grpc/http2/, as node:http2 did) fires a
 * stream write's callback only when its bytes have left for the socket, so a peer that sends batches and never reads its results
 * fills its window, then the call holds at most `window` responses and stops reading: the
 * peer's own window fills and it cannot send more. A response waiting `stallMs` cuts the
 * call's connection. Without this, grpc-js's write queue grows by every batch's results
 * (~0.9 KB per result, as issue #13 measured); pausing on `write() === false` is not enough either, as
 * the stream then still reads the 16 requests it buffers.
 */
export function flowControl(options: FlowControlOptions): grpc.ServerInterceptor {
  const log = options.logger.child({ component: 'flow-control' });
  return (descriptor, call) => {
    // Other methods get the call itself, not a wrapper per call (grpc-js only chains the result).
    if (!options.methods.has(descriptor.path)) return call as grpc.ServerInterceptingCall;
    const gated = new FlushGatedCall(
      call,
      (connection) => {
        log.warn({ method: descriptor.path, peer: call.getPeer(), stallMs: options.stallMs }, 'peer read no response for too long; closing its connection');
        options.cut(connection);
      },
      options,
    );
    return new grpc.ServerInterceptingCall(gated);
  };
}

/** Delegates to `next`, holding reads while `window` requests read still await a flushed response. */
class FlushGatedCall implements Call {
  readonly #next: Call;
  readonly #onStall: (connection: ConnectionInfo) => void;
  readonly #clock: Clock;
  readonly #stallMs: number;
  readonly #window: number;
  /** Requests read whose response has not flushed yet. */
  #outstanding = 0;
  /** Responses handed to grpc-js whose write callback has not fired. */
  #unflushed = 0;
  /** A read the handler asked for while the window was full. */
  #readWanted = false;
  #stallTimer: TimerHandle | undefined;
  #ended = false;

  constructor(next: Call, onStall: (connection: ConnectionInfo) => void, options: FlowControlOptions) {
    this.#next = next;
    this.#onStall = onStall;
    this.#clock = options.clock;
    this.#stallMs = options.stallMs;
    this.#window = options.window;
  }

  start(listener: Listener): void {
    this.#next.start({
      onReceiveMetadata: (metadata) => listener.onReceiveMetadata(metadata),
      onReceiveMessage: (message) => {
        this.#outstanding++;
        listener.onReceiveMessage(message);
      },
      onReceiveHalfClose: () => listener.onReceiveHalfClose(),
      onCancel: () => {
        this.#end();
        listener.onCancel();
      },
    });
  }

  sendMetadata(metadata: grpc.Metadata): void {
    this.#next.sendMetadata(metadata);
  }

  sendMessage(message: unknown, callback: () => void): void {
    if (this.#unflushed++ === 0 && !this.#ended) this.#stallTimer = this.#clock.setTimeout(() => this.#stalled(), this.#stallMs);
    this.#next.sendMessage(message, () => {
      if (--this.#unflushed === 0) this.#clearTimer();
      this.#outstanding = Math.max(0, this.#outstanding - 1);
      if (this.#readWanted && this.#outstanding < this.#window) {
        this.#readWanted = false;
        this.#next.startRead();
      }
      callback();
    });
  }

  /** The stall timer keeps running: a status queues behind unflushed responses too. */
  sendStatus(status: Parameters<Call['sendStatus']>[0]): void {
    this.#next.sendStatus(status);
  }

  startRead(): void {
    if (this.#outstanding >= this.#window) this.#readWanted = true;
    else this.#next.startRead();
  }

  getPeer(): string {
    return this.#next.getPeer();
  }

  getDeadline(): grpc.Deadline {
    return this.#next.getDeadline();
  }

  getHost(): string {
    return this.#next.getHost();
  }

  getAuthContext(): ReturnType<Call['getAuthContext']> {
    return this.#next.getAuthContext();
  }

  getConnectionInfo(): ConnectionInfo {
    return this.#next.getConnectionInfo();
  }

  getMetricsRecorder(): ReturnType<Call['getMetricsRecorder']> {
    return this.#next.getMetricsRecorder();
  }

  #stalled(): void {
    this.#stallTimer = undefined;
    if (this.#ended || this.#unflushed === 0) return;
    this.#end();
    this.#onStall(this.#next.getConnectionInfo());
  }

  /** The stream is gone (or cut): no stall can be reported for it any more. */
  #end(): void {
    this.#ended = true;
    this.#clearTimer();
  }

  #clearTimer(): void {
    if (this.#stallTimer === undefined) return;
    this.#clock.clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
  }
}
