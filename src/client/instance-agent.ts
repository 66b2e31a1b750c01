import { status as grpcStatus } from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { SystemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { Instance, InstanceStatus, type DeepPartial } from '../gen/roster/v1/instance.js';
import { backoffDelay, sleep, type BackoffOptions } from './backoff.js';
import type { HeartbeatResult } from '../gen/roster/v1/registry_service.js';
import { clientError, isRetryable, isServiceError } from './errors.js';
import type { RosterClient } from './roster-client.js';

/** What to keep registered, where, and on which clock. */
export interface InstanceAgentOptions {
  readonly client: RosterClient;
  /** The record to keep registered; `lease.renewalIntervalSecs` sets the heartbeat period (default 30 s). */
  readonly instance: DeepPartial<Instance> & { readonly app: string; readonly instanceId: string };
  /** Drives heartbeat and retry timing (default: the system clock); its wall time versions the record. */
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly backoff?: BackoffOptions;
  /** Registration attempts `start()` makes on transient errors before it gives up (default 5). */
  readonly startAttempts?: number;
}

const DEFAULT_RENEWAL_SECS = 30;
const MAX_CALL_TIMEOUT_MS = 10_000;

/**
 * Keeps one instance registered, the way a Eureka client does: register, heartbeat every
 * renewal interval (on the client's one shared Heartbeats stream), and when a heartbeat gets NOT_FOUND (evicted, status cleared to UNKNOWN,
 * or the server holds an older record) register again with a fresh last_dirty_timestamp.
 * Transient failures are retried with backoff, never beyond one renewal interval.
 */
export class InstanceAgent {
  readonly #client: RosterClient;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #backoff: BackoffOptions | undefined;
  readonly #startAttempts: number;
  readonly #record: Instance;
  readonly #abort = new AbortController();
  #renewMs: number;
  #dirty: number;
  #effectiveStatus = InstanceStatus.INSTANCE_STATUS_UNSPECIFIED;
  #mustRegister = true;
  #registrations = 0;
  #renewals = 0;
  #loop: Promise<void> | undefined;
  #stopped = false;
  readonly #onStop: (() => void)[] = [];

  constructor(options: InstanceAgentOptions) {
    this.#client = options.client;
    this.#clock = options.clock ?? new SystemClock();
    this.#backoff = options.backoff;
    this.#startAttempts = Math.max(1, options.startAttempts ?? 5);
    this.#record = Instance.fromPartial(options.instance);
    this.#log = (options.logger ?? pino({ enabled: false })).child({
      component: 'instance-agent',
      app: this.#record.app,
      instanceId: this.#record.instanceId,
    });
    this.#renewMs = (this.#record.lease?.renewalIntervalSecs || DEFAULT_RENEWAL_SECS) * 1000;
    this.#dirty = this.#record.lastDirtyTimestamp || this.#clock.wallNow();
  }

  /** The record version this agent last sent. */
  get lastDirtyTimestamp(): number {
    return this.#dirty;
  }

  /** The effective status the server last reported (e.g. OUT_OF_SERVICE after an operator override). */
  get status(): InstanceStatus {
    return this.#effectiveStatus;
  }

  /** Successful registrations, the first included. */
  get registrations(): number {
    return this.#registrations;
  }

  /** Successful heartbeats. */
  get renewals(): number {
    return this.#renewals;
  }

  /**
   * Registers (retrying transient errors up to `startAttempts` times) and starts heartbeating.
   * Rejects with the ServiceError when registration fails for good (e.g. INVALID_ARGUMENT).
   */
  async start(): Promise<Instance> {
    if (this.#loop !== undefined || this.#stopped) throw new Error('InstanceAgent.start() called twice');
    const signal = this.#abort.signal;
    let stored: Instance | undefined;
    for (let attempt = 0; stored === undefined; attempt++) {
      try {
        stored = await this.#register();
      } catch (err) {
        if (signal.aborted || !isRetryable(err) || attempt + 1 >= this.#startAttempts) throw err;
        const delay = backoffDelay(attempt, this.#backoff);
        this.#log.warn({ err, attempt, delayMs: Math.round(delay) }, 'registration failed; retrying');
        if (!(await sleep(this.#clock, delay, signal))) throw err;
      }
    }
    this.#loop = this.#run(signal);
    return stored;
  }

  /** Reports a new status of the instance itself (e.g. STARTING → UP): a new record version. */
  async setStatus(status: InstanceStatus): Promise<Instance> {
    if (this.#stopped) throw new Error('InstanceAgent is stopped');
    this.#record.status = status;
    this.#dirty = this.#freshDirty();
    return this.#register();
  }

  /** The record as this agent sends it (status, metadata, version). */
  get record(): Instance {
    return { ...this.#record, lastDirtyTimestamp: this.#dirty };
  }

  /** Stops heartbeating and cancels the instance (NOT_FOUND is fine: it is gone either way). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#abort.abort();
    for (const listener of this.#onStop.splice(0)) listener();
    await this.#loop;
    if (this.#registrations === 0) return;
    try {
      await this.#client.cancel(this.#record.app, this.#record.instanceId, { timeoutMs: MAX_CALL_TIMEOUT_MS });
      this.#log.info('instance cancelled');
    } catch (err) {
      if (!isServiceError(err) || err.code !== grpcStatus.NOT_FOUND) throw err;
    }
  }

  /** Calls `listener` once when {@link stop} begins (the client forgets agents this way). */
  onStop(listener: () => void): void {
    if (this.#stopped) listener();
    else this.#onStop.push(listener);
  }

  async #run(signal: AbortSignal): Promise<void> {
    let delay = this.#renewMs;
    let failures = 0;
    while (!signal.aborted) {
      if (delay > 0 && !(await sleep(this.#clock, delay, signal))) return;
      try {
        if (this.#mustRegister) await this.#register();
        else await this.#heartbeat();
        failures = 0;
        delay = this.#renewMs;
      } catch (err) {
        if (signal.aborted) return;
        if (!this.#mustRegister && isServiceError(err) && err.code === grpcStatus.NOT_FOUND) {
          this.#mustRegister = true;
          this.#dirty = this.#freshDirty();
          this.#log.info({ reason: err.details, lastDirtyTimestamp: this.#dirty }, 'heartbeat NOT_FOUND; registering again');
          delay = 0;
        } else if (isRetryable(err)) {
          delay = Math.min(backoffDelay(failures++, this.#backoff), this.#renewMs);
          this.#log.warn({ err, delayMs: Math.round(delay), registering: this.#mustRegister }, 'renewal failed; retrying');
        } else {
          delay = this.#renewMs;
          this.#log.error({ err, registering: this.#mustRegister }, 'renewal failed');
        }
      }
    }
  }

  async #register(): Promise<Instance> {
    const response = await this.#client.register({ ...this.#record, lastDirtyTimestamp: this.#dirty }, { signal: this.#abort.signal, timeoutMs: this.#callTimeoutMs() });
    this.#mustRegister = false;
    this.#registrations++;
    const stored = response.instance ?? this.#record;
    this.#effectiveStatus = stored.status;
    if (stored.lease !== undefined && stored.lease.renewalIntervalSecs > 0) {
      this.#renewMs = stored.lease.renewalIntervalSecs * 1000;
    }
    this.#log.info({ status: InstanceStatus[stored.status], lastDirtyTimestamp: this.#dirty }, 'instance registered');
    return stored;
  }

  /** Renews on the client's shared Heartbeats stream; a non-OK result is thrown as that status. */
  async #heartbeat(): Promise<void> {
    const signal = this.#abort.signal;
    const timeoutMs = this.#callTimeoutMs();
    let timer: TimerHandle | undefined;
    let onAbort: (() => void) | undefined;
    // The stream may be waiting to reconnect: give up after the call timeout (or on stop), and
    // let the loop retry; the queued heartbeat is harmless when it finally leaves.
    const giveUp = new Promise<HeartbeatResult>((resolve) => {
      timer = this.#clock.setTimeout(() => resolve(failed(grpcStatus.DEADLINE_EXCEEDED, `no heartbeat result within ${timeoutMs} ms`)), timeoutMs);
      onAbort = () => resolve(failed(grpcStatus.CANCELLED, 'instance agent stopped'));
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const result = await Promise.race([this.#client.heartbeats.heartbeat(this.#record.app, this.#record.instanceId, this.#dirty), giveUp]);
      if (result.code !== grpcStatus.OK) throw clientError(result.code, result.message);
      this.#renewals++;
      this.#effectiveStatus = result.status;
    } finally {
      if (timer !== undefined) this.#clock.clearTimeout(timer);
      if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
    }
  }

  #callTimeoutMs(): number {
    return Math.min(MAX_CALL_TIMEOUT_MS, this.#renewMs);
  }

  /** A version newer than any this agent sent, even if the wall clock stepped back. */
  #freshDirty(): number {
    return Math.max(this.#clock.wallNow(), this.#dirty + 1);
  }
}

function failed(code: grpcStatus, message: string): HeartbeatResult {
  return { code, message, status: InstanceStatus.INSTANCE_STATUS_UNSPECIFIED };
}
