import type { Clock } from '../core/clock.js';

const BUCKET_MS = 1000;

/**
 * Maps Eureka's delta window ("the changes of the last few minutes") onto registry revisions:
 * it remembers the first revision of each second that saw a change, so memory stays at one
 * mark per second of the window however busy the registry is. The window it answers is never
 * short: a change less than `windowMs` old is always inside, one up to a second older may be.
 */
export class DeltaWindow {
  readonly #clock: Clock;
  readonly #windowMs: number;
  /** Oldest first; `revision` is the first change at or after `at` (monotonic ms). */
  readonly #marks: { at: number; revision: number }[] = [];

  constructor(clock: Clock, windowMs: number) {
    this.#clock = clock;
    this.#windowMs = windowMs;
  }

  /** Records that a change with this revision happened now. */
  note(revision: number): void {
    const now = this.#clock.now();
    const last = this.#marks.at(-1);
    if (!last || now - last.at >= BUCKET_MS) this.#marks.push({ at: now, revision });
    this.#prune(now);
  }

  /** The revision after which every change is inside the window (`current` when none is). */
  since(current: number): number {
    this.#prune(this.#clock.now());
    const first = this.#marks[0];
    return first ? first.revision - 1 : current;
  }

  #prune(now: number): void {
    // A mark's changes span up to one bucket after it: drop it only when all are outside.
    while (this.#marks.length > 0 && this.#marks[0]!.at + BUCKET_MS <= now - this.#windowMs) this.#marks.shift();
  }
}
