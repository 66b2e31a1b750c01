import { performance } from 'node:perf_hooks';

/** What a {@link TurnBudget} pauses: a socket (or any stream) that can stop and restart reading. */
export interface Pausable {
  pause(): unknown;
  resume(): unknown;
}

/**
 * How long reading may go on in one turn of the event loop before connections yield. libuv
 * reads up to 32 chunks of 64 KiB from a ready socket per poll, and each chunk's requests are
 * handled as it is read: a burst from one client (a load generator that fell behind with a
 * million instances' renewals) kept timers from running for 150 ms. A connection that finds the
 * turn's budget spent when a chunk arrives still handles that chunk, then its socket stops
 * reading until the loop comes round (setImmediate); HTTP/2 flow control holds the client.
 */
export class TurnBudget {
  readonly #budgetMs: number;
  readonly #now: () => number;
  #startedAt = -1;
  readonly #paused = new Set<Pausable>();

  constructor(budgetMs = 10, now: () => number = () => performance.now()) {
    this.#budgetMs = budgetMs;
    this.#now = now;
  }

  /** Called as `reader` gets a chunk: the first of a turn starts the clock; once it has run out, `reader` pauses until the next turn. */
  reading(reader: Pausable): void {
    const now = this.#now();
    if (this.#startedAt < 0) {
      this.#startedAt = now;
      setImmediate(this.#endTurn);
    } else if (now - this.#startedAt > this.#budgetMs && !this.#paused.has(reader)) {
      reader.pause();
      this.#paused.add(reader);
    }
  }

  readonly #endTurn = (): void => {
    this.#startedAt = -1;
    // Only when a reader did pause (rarely): clearing a Set allocates it a new table every time.
    if (this.#paused.size === 0) return;
    for (const reader of this.#paused) reader.resume();
    this.#paused.clear();
  };
}

/** The event loop is one per process, and so is the budget of its turns. */
export const EVENT_LOOP_TURN = new TurnBudget();
