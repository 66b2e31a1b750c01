/**
 * Time as the core sees it. `now()` is monotonic (leases, expiry, rates); `wallNow()` is
 * epoch milliseconds (timestamps shown to users and dirty-timestamp versions).
 */
export interface Clock {
  now(): number;
  wallNow(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** An opaque timer returned by {@link Clock.setTimeout}. */
export interface TimerHandle {
  readonly id: number;
}

/**
 * The real clock: `performance.now()` for monotonic time, `Date.now()` for the wall. Its timers
 * do not keep the process alive, unless `keepProcessAlive` says they are work someone awaits
 * (a client's retry backoff: a CLI must not exit in the middle of it).
 */
export class SystemClock implements Clock {
  readonly #timers = new Map<number, NodeJS.Timeout>();
  readonly #keepProcessAlive: boolean;
  #nextId = 1;

  constructor(options: { readonly keepProcessAlive?: boolean } = {}) {
    this.#keepProcessAlive = options.keepProcessAlive ?? false;
  }

  now(): number {
    return performance.now();
  }

  wallNow(): number {
    return Date.now();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.#nextId++;
    const timer = setTimeout(() => {
      this.#timers.delete(id);
      fn();
    }, ms);
    if (!this.#keepProcessAlive) timer.unref();
    this.#timers.set(id, timer);
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    clearTimeout(this.#timers.get(handle.id));
    this.#timers.delete(handle.id);
  }
}

/**
 * A clock for tests: time stands still until `advance()`, which fires due timers in deadline
 * order (timers scheduled while advancing fire too if they fall inside the step).
 */
export class FakeClock implements Clock {
  #mono = 0;
  #wall: number;
  #nextId = 1;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();

  constructor(wallStart = Date.UTC(2026, 0, 1)) {
    this.#wall = wallStart;
  }

  now(): number {
    return this.#mono;
  }

  wallNow(): number {
    return this.#wall;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#mono + Math.max(0, ms), fn });
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle.id);
  }

  /** Moves both clocks forward by `ms`, running every timer that falls due on the way. */
  advance(ms: number): void {
    const target = this.#mono + ms;
    for (;;) {
      let nextId = -1;
      let nextAt = Infinity;
      for (const [id, t] of this.#timers) {
        if (t.at <= target && (t.at < nextAt || (t.at === nextAt && id < nextId))) {
          nextAt = t.at;
          nextId = id;
        }
      }
      if (nextId < 0) break;
      const timer = this.#timers.get(nextId)!;
      this.#timers.delete(nextId);
      this.#wall += timer.at - this.#mono;
      this.#mono = timer.at;
      timer.fn();
    }
    this.#wall += target - this.#mono;
    this.#mono = target;
  }

  /** Number of pending timers (for leak checks in tests). */
  get pendingTimers(): number {
    return this.#timers.size;
  }
}
