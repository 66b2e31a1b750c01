const MATURED = 1;
const COUNTED = 2;

/**
 * Σ over registered instances of min(window, now − registeredAt) × rate, in O(1) amortised:
 * instances registered a whole window ago contribute a constant, the young ones
 * `now × Σrate − Σ(registeredAt × rate)`. Young instances wait in a queue in registration
 * order (monotonic time only grows) and move to the mature sum when their window is full.
 * Reads stay cheap however large the registry, so metrics and health may ask at any time.
 * Instances are slot numbers (the registry's lease slots); per-slot state lives in typed
 * arrays, so a million instances add no objects for the garbage collector.
 */
export class ExpectedRenewals {
  #matureRate = 0;
  #matureCount = 0;
  #youngRate = 0;
  #youngWeighted = 0;
  #youngCount = 0;
  #registeredAt = new Float64Array(0);
  /** Renewals per millisecond (1 / renewal interval). */
  #rate = new Float64Array(0);
  #flags = new Uint8Array(0);
  /**
   * Young slots in registration order with the time they registered at: a slot freed and
   * reused is queued again, and its stale entry is told apart by that time.
   */
  #queueSlots: number[] = [];
  #queueTimes: number[] = [];
  #head = 0;

  constructor(readonly windowMs: number) {}

  /** Starts counting `slot`, registered at monotonic `registeredAt` and renewing at `rate` per ms. */
  add(slot: number, registeredAt: number, rate: number): void {
    if (slot >= this.#flags.length) this.#grow(slot);
    this.#registeredAt[slot] = registeredAt;
    this.#rate[slot] = rate;
    this.#flags[slot] = COUNTED;
    this.#youngRate += rate;
    this.#youngWeighted += registeredAt * rate;
    this.#youngCount++;
    this.#queueSlots.push(slot);
    this.#queueTimes.push(registeredAt);
  }

  /** A new renewal interval for a registered instance (a re-register may change it). */
  setRate(slot: number, rate: number): void {
    if ((this.#flags[slot]! & COUNTED) === 0 || rate === this.#rate[slot]) {
      this.#rate[slot] = rate;
      return;
    }
    this.#take(slot);
    this.#rate[slot] = rate;
    this.#give(slot);
  }

  remove(slot: number): void {
    const flags = this.#flags[slot]!;
    if ((flags & COUNTED) === 0) return;
    this.#take(slot);
    if (flags & MATURED) this.#matureCount--;
    else this.#youngCount--;
    this.#flags[slot] = 0;
    if (this.#matureCount === 0) this.#matureRate = 0;
    if (this.#youngCount === 0) this.#youngRate = this.#youngWeighted = 0;
  }

  /** Expected renewals over the window ending at `now`. */
  at(now: number): number {
    while (this.#head < this.#queueSlots.length && now - this.#queueTimes[this.#head]! >= this.windowMs) {
      const slot = this.#queueSlots[this.#head]!;
      const at = this.#queueTimes[this.#head++]!;
      if (this.#flags[slot] !== COUNTED || this.#registeredAt[slot] !== at) continue;
      this.#take(slot);
      this.#youngCount--;
      this.#flags[slot] = COUNTED | MATURED;
      this.#matureCount++;
      this.#give(slot);
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queueSlots.length) {
      this.#queueSlots = this.#queueSlots.slice(this.#head);
      this.#queueTimes = this.#queueTimes.slice(this.#head);
      this.#head = 0;
    }
    if (this.#youngCount === 0) this.#youngRate = this.#youngWeighted = 0;
    return Math.max(0, this.#matureRate * this.windowMs + this.#youngRate * now - this.#youngWeighted);
  }

  #take(slot: number): void {
    const rate = this.#rate[slot]!;
    if (this.#flags[slot]! & MATURED) this.#matureRate -= rate;
    else {
      this.#youngRate -= rate;
      this.#youngWeighted -= this.#registeredAt[slot]! * rate;
    }
  }

  #give(slot: number): void {
    const rate = this.#rate[slot]!;
    if (this.#flags[slot]! & MATURED) this.#matureRate += rate;
    else {
      this.#youngRate += rate;
      this.#youngWeighted += this.#registeredAt[slot]! * rate;
    }
  }

  #grow(slot: number): void {
    const capacity = Math.max(1024, this.#flags.length * 2, slot + 1);
    const registeredAt = new Float64Array(capacity);
    registeredAt.set(this.#registeredAt);
    const rate = new Float64Array(capacity);
    rate.set(this.#rate);
    const flags = new Uint8Array(capacity);
    flags.set(this.#flags);
    this.#registeredAt = registeredAt;
    this.#rate = rate;
    this.#flags = flags;
  }
}
