/**
 * Events counted over a sliding window of whole seconds (a ring of per-second buckets), so a
 * rate can be read at any moment rather than only at a minute boundary. Time is the core's
 * monotonic clock in milliseconds; the ring is advanced lazily on each call.
 */
export class SlidingCounter {
  readonly #buckets: Uint32Array;
  /** The second the newest bucket belongs to. */
  #second = 0;

  constructor(readonly windowSecs = 60) {
    this.#buckets = new Uint32Array(windowSecs);
  }

  add(now: number, n = 1): void {
    this.#advance(now);
    this.#buckets[this.#second % this.windowSecs]! += n;
  }

  /** Events in the current second and the `windowSecs - 1` before it. */
  count(now: number): number {
    this.#advance(now);
    let sum = 0;
    for (const n of this.#buckets) sum += n;
    return sum;
  }

  #advance(now: number): void {
    const second = Math.floor(now / 1000);
    if (second <= this.#second) return;
    if (second - this.#second >= this.windowSecs) this.#buckets.fill(0);
    else for (let s = this.#second + 1; s <= second; s++) this.#buckets[s % this.windowSecs] = 0;
    this.#second = second;
  }
}
