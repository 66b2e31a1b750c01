import { status, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { SystemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { InstanceStatus } from '../gen/roster/v1/instance.js';
import type { HeartbeatRequest, HeartbeatResult, HeartbeatsRequest, HeartbeatsResponse } from '../gen/roster/v1/registry_service.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { isServiceError } from './errors.js';
import type { RosterClient } from './roster-client.js';

/** Batching and flow-control bounds; the defaults suit ~50k renewals/s on one stream. */
export interface HeartbeatStreamOptions {
  /** Heartbeats per batch (default 500; the server accepts up to 1000). */
  readonly maxBatch?: number;
  /** Batches sent but not yet answered (default 8): bounds memory and keeps grpc-js fast. */
  readonly window?: number;
  /** Heartbeats waiting to be sent beyond which new ones fail with RESOURCE_EXHAUSTED (default 100,000). */
  readonly maxQueued?: number;
  /** Drives the reconnect backoff (default: the system clock). */
  readonly clock?: Clock;
  readonly backoff?: BackoffOptions;
}

type Settle = (result: HeartbeatResult) => void;

/**
 * Many instances' renewals on one Heartbeats bidi stream. Heartbeats queue up and leave in
 * batches on the next event-loop turn; at most `window` batches are unanswered at a time.
 * Each heartbeat's promise resolves (never rejects) with its result: `code` is a gRPC status
 * code — the server's per-item verdict, or the stream's failure for items it took down.
 * A failed stream is reopened with backoff; queued heartbeats wait for it.
 */
export class HeartbeatStream {
  readonly #client: RosterClient;
  readonly #clock: Clock;
  readonly #maxBatch: number;
  readonly #window: number;
  readonly #maxQueued: number;
  readonly #backoff: BackoffOptions | undefined;

  #queue: HeartbeatRequest[] = [];
  #queueSettles: Settle[] = [];
  #head = 0;
  /** Batch id → the settle functions of its heartbeats, in order. */
  readonly #inFlight = new Map<number, Settle[]>();
  #nextBatchId = 1;
  #call: ClientDuplexStream<HeartbeatsRequest, HeartbeatsResponse> | undefined;
  #flushScheduled = false;
  #reconnectTimer: TimerHandle | undefined;
  #failures = 0;
  #closing = false;
  #drained: (() => void) | undefined;

  constructor(client: RosterClient, options: HeartbeatStreamOptions = {}) {
    this.#client = client;
    this.#clock = options.clock ?? new SystemClock();
    this.#maxBatch = Math.min(1000, Math.max(1, options.maxBatch ?? 500));
    this.#window = Math.max(1, options.window ?? 8);
    this.#maxQueued = options.maxQueued ?? 100_000;
    this.#backoff = options.backoff;
  }

  /** Number of heartbeats waiting to be sent. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /** Number of batches sent and not yet answered (never above the window). */
  get inFlightBatches(): number {
    return this.#inFlight.size;
  }

  /** Renews one lease. `lastDirtyTimestamp` 0 means "not sent". */
  heartbeat(app: string, instanceId: string, lastDirtyTimestamp = 0): Promise<HeartbeatResult> {
    if (this.#closing) return Promise.resolve(failed(status.CANCELLED, 'heartbeat stream is closed'));
    if (this.queued >= this.#maxQueued) {
      return Promise.resolve(failed(status.RESOURCE_EXHAUSTED, 'heartbeat queue is full'));
    }
    return new Promise<HeartbeatResult>((resolve) => {
      this.#queue.push({ app, instanceId, lastDirtyTimestamp });
      this.#queueSettles.push(resolve);
      this.#scheduleFlush();
    });
  }

  /**
   * Sends what is queued, waits up to `graceMs` for the answers, then ends the stream. Anything
   * still unanswered resolves with CANCELLED; later heartbeats resolve with CANCELLED at once.
   */
  async close(graceMs = 5_000): Promise<void> {
    this.#closing = true;
    if (this.queued > 0 || this.#inFlight.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.#drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.#drained = undefined;
    if (this.#reconnectTimer !== undefined) this.#clock.clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    const call = this.#call;
    this.#call = undefined;
    if (call !== undefined) {
      call.removeAllListeners('data');
      call.end();
      call.cancel();
    }
    this.#failInFlight(status.CANCELLED, 'heartbeat stream closed');
    this.#failQueued(status.CANCELLED, 'heartbeat stream closed');
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(this.#flush);
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    if (this.queued === 0 || this.#reconnectTimer !== undefined) return;
    const call = this.#call ?? this.#open();
    while (this.#inFlight.size < this.#window && this.queued > 0) {
      const batchId = this.#nextBatchId++;
      const { heartbeats, settles } = this.#take(Math.min(this.#maxBatch, this.queued));
      this.#inFlight.set(batchId, settles);
      call.write({ batchId, heartbeats });
    }
  };

  /** Dequeues `n` heartbeats; whole arrays are handed over when possible (no copying). */
  #take(n: number): { heartbeats: HeartbeatRequest[]; settles: Settle[] } {
    if (this.#head === 0 && n === this.#queue.length) {
      const taken = { heartbeats: this.#queue, settles: this.#queueSettles };
      this.#queue = [];
      this.#queueSettles = [];
      return taken;
    }
    const end = this.#head + n;
    const taken = { heartbeats: this.#queue.slice(this.#head, end), settles: this.#queueSettles.slice(this.#head, end) };
    this.#head = end;
    if (end === this.#queue.length) {
      this.#queue = [];
      this.#queueSettles = [];
      this.#head = 0;
    } else if (end > 65_536) {
      this.#queue.splice(0, end);
      this.#queueSettles.splice(0, end);
      this.#head = 0;
    }
    return taken;
  }

  #open(): ClientDuplexStream<HeartbeatsRequest, HeartbeatsResponse> {
    const call = this.#client.openHeartbeats();
    this.#call = call;
    call.on('data', (response: HeartbeatsResponse) => this.#onResponse(response));
    call.on('error', (err: Error) => this.#onStreamFailure(call, err));
    call.on('end', () => this.#onStreamFailure(call, undefined));
    return call;
  }

  #onResponse(response: HeartbeatsResponse): void {
    const settles = this.#inFlight.get(response.batchId);
    if (settles === undefined) return;
    this.#inFlight.delete(response.batchId);
    this.#failures = 0;
    const { results } = response;
    if (results.length === settles.length) {
      for (let i = 0; i < settles.length; i++) settles[i]!(results[i]!);
    } else {
      const result = failed(status.INTERNAL, `server answered ${results.length} results for ${settles.length} heartbeats`);
      for (const settle of settles) settle(result);
    }
    if (this.queued > 0) this.#flush();
    else if (this.#inFlight.size === 0) this.#drained?.();
  }

  #onStreamFailure(call: ClientDuplexStream<HeartbeatsRequest, HeartbeatsResponse>, err: Error | undefined): void {
    if (call !== this.#call) return;
    this.#call = undefined;
    call.cancel();
    const code = err !== undefined && isServiceError(err) ? (err as ServiceError).code : status.UNAVAILABLE;
    const message = err === undefined ? 'heartbeat stream ended by the server' : err.message;
    this.#failInFlight(code, message);
    if (this.#closing) {
      this.#failQueued(code, message);
      this.#drained?.();
      return;
    }
    const delay = backoffDelay(this.#failures++, this.#backoff);
    this.#reconnectTimer = this.#clock.setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#flush();
    }, delay);
  }

  #failInFlight(code: status, message: string): void {
    if (this.#inFlight.size === 0) return;
    const result = failed(code, message);
    for (const settles of this.#inFlight.values()) for (const settle of settles) settle(result);
    this.#inFlight.clear();
  }

  #failQueued(code: status, message: string): void {
    const result = failed(code, message);
    for (let i = this.#head; i < this.#queueSettles.length; i++) this.#queueSettles[i]!(result);
    this.#queue = [];
    this.#queueSettles = [];
    this.#head = 0;
  }
}

function failed(code: status, message: string): HeartbeatResult {
  return { code, message, status: InstanceStatus.INSTANCE_STATUS_UNSPECIFIED };
}
