/** What {@link ExpectedRenewals} keeps on each lease. */
export interface Expectation {
  /** Monotonic time the instance registered on this node. */
  readonly registeredAt: number;
  /** Renewals per millisecond (1 / renewal interval). */
  rate: number;
  /** Registered for a whole window already: counts `rate × window`. */
  matured: boolean;
  /** Still registered (false once removed; the young queue drops it lazily). */
  counted: boolean;
}

/**
 * Σ over registered instances of min(window, now − registeredAt) × rate, in O(1) amortised:
 * instances registered a whole window ago contribute a constant, the young ones
 * `now × Σrate − Σ(registeredAt × rate)`. Young instances wait in a queue in registration
 * order (monotonic time only grows) and move to the mature sum when their window is full.
 * Reads stay cheap however large the registry, so metrics and health may ask at any time.
 */
export class ExpectedRenewals {
  #matureRate = 0;
  #matureCount = 0;
  #youngRate = 0;
  #youngWeighted = 0;
  #youngCount = 0;
  #queue: Expectation[] = [];
  #head = 0;

  constructor(readonly windowMs: number) {}

  add(e: Expectation): void {
    e.counted = true;
    e.matured = false;
    this.#youngRate += e.rate;
    this.#youngWeighted += e.registeredAt * e.rate;
    this.#youngCount++;
    this.#queue.push(e);
  }

  /** A new renewal interval for a registered instance (a re-register may change it). */
  setRate(e: Expectation, rate: number): void {
    if (!e.counted || rate === e.rate) {
      e.rate = rate;
      return;
    }
    this.#take(e);
    e.rate = rate;
    this.#give(e);
  }

  remove(e: Expectation): void {
    if (!e.counted) return;
    this.#take(e);
    if (e.matured) this.#matureCount--;
    else this.#youngCount--;
    e.counted = false;
    if (this.#matureCount === 0) this.#matureRate = 0;
    if (this.#youngCount === 0) this.#youngRate = this.#youngWeighted = 0;
  }

  /** Expected renewals over the window ending at `now`. */
  at(now: number): number {
    while (this.#head < this.#queue.length && now - this.#queue[this.#head]!.registeredAt >= this.windowMs) {
      const e = this.#queue[this.#head++]!;
      if (!e.counted || e.matured) continue;
      this.#take(e);
      this.#youngCount--;
      e.matured = true;
      this.#matureCount++;
      this.#give(e);
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    if (this.#youngCount === 0) this.#youngRate = this.#youngWeighted = 0;
    return Math.max(0, this.#matureRate * this.windowMs + this.#youngRate * now - this.#youngWeighted);
  }

  #take(e: Expectation): void {
    if (e.matured) this.#matureRate -= e.rate;
    else {
      this.#youngRate -= e.rate;
      this.#youngWeighted -= e.registeredAt * e.rate;
    }
  }

  #give(e: Expectation): void {
    if (e.matured) this.#matureRate += e.rate;
    else {
      this.#youngRate += e.rate;
      this.#youngWeighted += e.registeredAt * e.rate;
    }
  }
}
