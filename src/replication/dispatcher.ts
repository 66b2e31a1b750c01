import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Registry } from '../core/registry.js';
import type { LinkError, PeerLink, ReplicateStream, ReplicationTask, TaskResult } from './link.js';

export interface DispatcherOptions {
  /** Pending tasks per peer; when full the oldest is dropped (and counted). */
  maxQueue: number;
  /** Tasks per batch (the peer answers each batch with one result per task). */
  maxBatch: number;
  /**
   * How long a task may wait for companions before its batch leaves, on the injected clock.
   * 0: at the end of the current I/O turn (setImmediate), so tasks written in one turn
   * leave together without adding a timer's millisecond or more to replication lag.
   */
  flushDelayMs: number;
  /** Batches sent but not yet answered. */
  maxBatchesInFlight: number;
  /** Lifetime of tasks other than register/heartbeat (those live one renewal interval). */
  otherTaskTtlMs: number;
  /** Pause after the peer says it is overloaded. */
  overloadPauseMs: number;
  /** Reconnect backoff bounds; each failure doubles the delay, with jitter. */
  backoffMinMs: number;
  backoffMaxMs: number;
  random: () => number;
}

const DEFAULT_DISPATCHER_OPTIONS: DispatcherOptions = {
  maxQueue: 10_000,
  maxBatch: 250,
  flushDelayMs: 2,
  maxBatchesInFlight: 4,
  otherTaskTtlMs: 30_000,
  overloadPauseMs: 1_000,
  backoffMinMs: 100,
  backoffMaxMs: 30_000,
  random: Math.random,
};

/** Counters for metrics and `roster peers`. */
export interface DispatcherStats {
  readonly peer: string;
  readonly connected: boolean;
  readonly queueDepth: number;
  readonly inFlight: number;
  readonly batchesSent: number;
  readonly tasksSent: number;
  readonly dropped: number;
  readonly expired: number;
  /** Stream closures and failed attempts, each followed by a retry. */
  readonly retries: number;
  /** Times the stream opened again after having been open: actual reconnects. */
  readonly reconnects: number;
  readonly conflicts: number;
  readonly notFound: number;
  /** Tasks dropped because the stream broke every time they were in flight. */
  readonly poisoned: number;
  readonly pausedUntil: number;
  readonly lastError: string | undefined;
}

interface Pending {
  readonly task: ReplicationTask;
  readonly expiresAt: number;
  /** Streams that broke while this task was in flight. */
  failures: number;
}

/**
 * A task in flight on this many broken streams in a row is dropped and counted: a task the peer
 * cannot survive must not be resent forever (heartbeats and digests repair what it carried).
 */
const MAX_TASK_FAILURES = 3;

/** The registry operations a dispatcher needs for result handling. */
export type DispatcherRegistry = Pick<Registry, 'applyRecord' | 'record'>;

const taskKey = (t: ReplicationTask): string => (t.action === 'register' ? `register#${t.record.app}/${t.record.instanceId}` : `${t.action}#${t.app}/${t.instanceId}`);

/**
 * Replicates to one peer over one long-lived stream: a bounded, keyed queue (a newer task
 * replaces the pending one in place), batches flushed within milliseconds, a window of batches
 * in flight, and reconnects with exponential backoff and jitter.
 */
export class PeerDispatcher {
  readonly #queue = new Map<string, Pending>();
  readonly #inFlight = new Map<number, Pending[]>();
  readonly #opts: DispatcherOptions;
  readonly #log: Logger | undefined;
  #stream: ReplicateStream | undefined;
  #connected = false;
  #stopped = true;
  #nextBatchId = 1;
  #attempt = 0;
  #flushTimer: TimerHandle | undefined;
  #flushImmediate: NodeJS.Immediate | undefined;
  #reconnectTimer: TimerHandle | undefined;
  #cancelReachable: (() => void) | undefined;
  #pausedUntil = 0;
  #lastError: string | undefined;
  #drainWaiters: Array<() => void> = [];
  #stats = { batchesSent: 0, tasksSent: 0, dropped: 0, expired: 0, retries: 0, reconnects: 0, conflicts: 0, notFound: 0, poisoned: 0 };
  #everOpen = false;

  constructor(
    readonly link: PeerLink,
    private readonly registry: DispatcherRegistry,
    private readonly clock: Clock,
    options: Partial<DispatcherOptions> = {},
    logger?: Logger,
    private readonly onOpen?: () => void,
  ) {
    this.#opts = { ...DEFAULT_DISPATCHER_OPTIONS, ...options };
    this.#log = logger?.child({ component: 'replication', peer: link.address });
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#connect();
  }

  /** Queues a task; a pending task for the same action and instance is replaced in place. */
  enqueue(task: ReplicationTask): void {
    const key = taskKey(task);
    const ttl = task.action === 'cancel' ? this.#opts.otherTaskTtlMs : this.#renewalIntervalMs(task);
    const pending: Pending = { task, expiresAt: this.clock.now() + ttl, failures: 0 };
    if (!this.#queue.has(key) && this.#queue.size >= this.#opts.maxQueue) {
      const oldest = this.#queue.keys().next().value!;
      this.#queue.delete(oldest);
      this.#stats.dropped++;
    }
    this.#queue.set(key, pending);
    this.#scheduleFlush();
  }

  stats(): DispatcherStats {
    return {
      peer: this.link.address,
      connected: this.#connected,
      queueDepth: this.#queue.size,
      inFlight: [...this.#inFlight.values()].reduce((n, b) => n + b.length, 0),
      ...this.#stats,
      pausedUntil: this.#pausedUntil,
      lastError: this.#lastError,
    };
  }

  /** Resolves once nothing is queued or in flight (or when `stop` is called). */
  drained(): Promise<void> {
    if (this.#isDrained()) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  stop(): void {
    this.#stopped = true;
    this.#cancelFlush();
    if (this.#reconnectTimer) this.clock.clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#cancelReachable?.();
    const stream = this.#stream;
    this.#stream = undefined;
    this.#connected = false;
    stream?.close();
    this.link.close();
    for (const resolve of this.#drainWaiters.splice(0)) resolve();
  }

  #connect(): void {
    if (this.#reconnectTimer) this.clock.clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#cancelReachable?.();
    this.#cancelReachable = undefined;
    if (this.#stopped) return;
    const stream = this.link.replicate({
      onOpen: () => {
        if (this.#stream !== stream) return;
        if (this.#everOpen) this.#stats.reconnects++;
        this.#everOpen = true;
        this.#connected = true;
        this.#lastError = undefined;
        this.#log?.info('replication stream open');
        this.onOpen?.();
        this.#scheduleFlush();
      },
      onResults: (batchId, results) => {
        if (this.#stream === stream) this.#handleResults(batchId, results);
      },
      onClose: (error) => {
        if (this.#stream === stream) this.#handleClose(error);
      },
    });
    this.#stream = stream;
  }

  #scheduleFlush(): void {
    if (this.#flushTimer || this.#flushImmediate || !this.#connected || this.#stopped || this.#queue.size === 0) return;
    if (this.#inFlight.size >= this.#opts.maxBatchesInFlight) return;
    const delay = Math.max(this.#opts.flushDelayMs, this.#pausedUntil - this.clock.now());
    if (delay <= 0) {
      this.#flushImmediate = setImmediate(() => {
        this.#flushImmediate = undefined;
        this.#flush();
      });
      return;
    }
    this.#flushTimer = this.clock.setTimeout(() => {
      this.#flushTimer = undefined;
      this.#flush();
    }, delay);
  }

  #cancelFlush(): void {
    if (this.#flushTimer) this.clock.clearTimeout(this.#flushTimer);
    if (this.#flushImmediate) clearImmediate(this.#flushImmediate);
    this.#flushTimer = this.#flushImmediate = undefined;
  }

  #flush(): void {
    const now = this.clock.now();
    while (this.#stream && this.#connected && this.#queue.size > 0 && this.#inFlight.size < this.#opts.maxBatchesInFlight) {
      const batch: Pending[] = [];
      for (const [key, pending] of this.#queue) {
        if (batch.length >= this.#opts.maxBatch) break;
        this.#queue.delete(key);
        if (pending.expiresAt <= now) this.#stats.expired++;
        else batch.push(pending);
      }
      if (batch.length === 0) continue;
      const batchId = this.#nextBatchId++;
      this.#inFlight.set(batchId, batch);
      this.#stats.batchesSent++;
      this.#stats.tasksSent += batch.length;
      this.#stream.send(
        batchId,
        batch.map((p) => p.task),
      );
    }
    this.#notifyIfDrained();
  }

  #handleResults(batchId: number, results: readonly TaskResult[]): void {
    const batch = this.#inFlight.get(batchId);
    if (!batch) return;
    this.#inFlight.delete(batchId);
    this.#attempt = 0;
    let overloaded = false;
    batch.forEach((pending, i) => {
      const result = results[i] ?? { code: 'overloaded' };
      const task = pending.task;
      switch (result.code) {
        case 'ok':
          return;
        case 'not_found': {
          this.#stats.notFound++;
          if (task.action !== 'heartbeat') return;
          const record = this.registry.record(task.app, task.instanceId);
          if (record) this.enqueue({ action: 'register', record, originTimestamp: this.clock.wallNow() });
          return;
        }
        case 'conflict':
          this.#stats.conflicts++;
          this.registry.applyRecord(result.record);
          return;
        case 'invalid':
          this.#log?.warn({ action: task.action, reason: result.message }, 'peer refused a task');
          return;
        case 'overloaded':
          overloaded = true;
          this.#requeue(pending);
          return;
      }
    });
    if (overloaded) this.#pause('peer overloaded');
    this.#scheduleFlush();
    this.#notifyIfDrained();
  }

  #handleClose(error: LinkError | undefined): void {
    this.#stream = undefined;
    this.#connected = false;
    let poisoned = 0;
    for (const batch of this.#inFlight.values()) {
      for (const pending of batch) {
        if (++pending.failures >= MAX_TASK_FAILURES) poisoned++;
        else this.#requeue(pending);
      }
    }
    this.#inFlight.clear();
    if (poisoned > 0) {
      this.#stats.poisoned += poisoned;
      this.#log?.error({ tasks: poisoned, failures: MAX_TASK_FAILURES }, 'dropped tasks that were in flight on every broken stream');
    }
    this.#cancelFlush();
    if (this.#stopped) return;
    this.#lastError = error?.message ?? 'stream closed by peer';
    this.#stats.retries++;
    let delay: number;
    if (error?.kind === 'overloaded') {
      delay = this.#opts.overloadPauseMs;
    } else {
      const ceiling = Math.min(this.#opts.backoffMaxMs, this.#opts.backoffMinMs * 2 ** this.#attempt);
      // "Equal jitter": at least half the ceiling, so retries never stampede at zero delay.
      delay = ceiling / 2 + this.#opts.random() * (ceiling / 2);
      this.#attempt++;
    }
    this.#log?.warn({ err: this.#lastError, kind: error?.kind, retryInMs: Math.round(delay) }, 'replication stream closed; reconnecting');
    this.#reconnectTimer = this.clock.setTimeout(() => this.#connect(), delay);
    // A healed link should not wait out a backoff that grew during a long partition.
    if (error?.kind === 'unavailable') this.#cancelReachable = this.link.onReachable?.(() => this.#connect());
  }

  /** Registers and heartbeats are stale after one renewal interval: a fresher one will follow. */
  #renewalIntervalMs(task: ReplicationTask): number {
    const record = task.action === 'register' ? task.record : this.registry.record(task.app, task.instanceId);
    return (record?.renewalIntervalSecs ?? 30) * 1000;
  }

  /** Puts an unanswered task back unless a newer one for the same key is already waiting. */
  #requeue(pending: Pending): void {
    const key = taskKey(pending.task);
    if (!this.#queue.has(key) && this.#queue.size < this.#opts.maxQueue) this.#queue.set(key, pending);
  }

  #pause(reason: string): void {
    this.#pausedUntil = this.clock.now() + this.#opts.overloadPauseMs;
    this.#log?.warn({ reason, pauseMs: this.#opts.overloadPauseMs }, 'pausing replication to peer');
  }

  #isDrained(): boolean {
    return this.#queue.size === 0 && this.#inFlight.size === 0;
  }

  #notifyIfDrained(): void {
    if (this.#isDrained()) for (const resolve of this.#drainWaiters.splice(0)) resolve();
  }
}
