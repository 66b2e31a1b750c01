import { PagedColumn } from './paged-column.js';

const MATURED = 1;
const COUNTED = 2;

/**
 * Σ over registered instances of min(window, now − registeredAt) × rate, in O(1) amortised:
 * instances registered a whole window ago contribute a constant, the young ones
 * `now × Σrate − Σ(registeredAt × rate)`. Young instances wait in a queue in registration
 * order (monotonic time only grows) and move to the mature sum when their window is full.
 * Reads stay cheap however large the registry, so metrics and health may ask at any time.
 * Instances are slot numbers (the registry's lease slots); per-slot state lives in paged
 * typed arrays, so a million instances add no objects for the garbage collector and growing
 * never copies.
 */
export class ExpectedRenewals {
  #matureRate = 0;
  #matureCount = 0;
  #youngRate = 0;
  #youngWeighted = 0;
  #youngCount = 0;
  readonly #registeredAt = new PagedColumn<number>((n) => new Float64Array(n));
  /** Renewals per millisecond (1 / renewal interval). */
  readonly #rate = new PagedColumn<number>((n) => new Float64Array(n));
  readonly #flags = new PagedColumn<number>((n) => new Uint8Array(n));
  /**
   * Young slots in registration order with the time they registered at: a slot freed and
   * reused is queued again, and its stale entry is told apart by that time.
   */
  readonly #young = new YoungQueue();

  constructor(readonly windowMs: number) {}

  /** Starts counting `slot`, registered at monotonic `registeredAt` and renewing at `rate` per ms. */
  add(slot: number, registeredAt: number, rate: number): void {
    if (slot >= this.#flags.capacity) for (const column of [this.#registeredAt, this.#rate, this.#flags]) column.ensure(slot);
    this.#registeredAt.set(slot, registeredAt);
    this.#rate.set(slot, rate);
    this.#flags.set(slot, COUNTED);
    this.#youngRate += rate;
    this.#youngWeighted += registeredAt * rate;
    this.#youngCount++;
    this.#young.push(slot, registeredAt);
  }

  /** A new renewal interval for a registered instance (a re-register may change it). */
  setRate(slot: number, rate: number): void {
    if ((this.#flags.get(slot) & COUNTED) === 0 || rate === this.#rate.get(slot)) {
      this.#rate.set(slot, rate);
      return;
    }
    this.#take(slot);
    this.#rate.set(slot, rate);
    this.#give(slot);
  }

  remove(slot: number): void {
    const flags = this.#flags.get(slot);
    if ((flags & COUNTED) === 0) return;
    this.#take(slot);
    if (flags & MATURED) this.#matureCount--;
    else this.#youngCount--;
    this.#flags.set(slot, 0);
    if (this.#matureCount === 0) this.#matureRate = 0;
    if (this.#youngCount === 0) this.#youngRate = this.#youngWeighted = 0;
  }

  /** Expected renewals over the window ending at `now`. */
  at(now: number): number {
    while (this.#young.size > 0 && now - this.#young.firstTime() >= this.windowMs) {
      const at = this.#young.firstTime();
      const slot = this.#young.shift();
      if (this.#flags.get(slot) !== COUNTED || this.#registeredAt.get(slot) !== at) continue;
      this.#take(slot);
      this.#youngCount--;
      this.#flags.set(slot, COUNTED | MATURED);
      this.#matureCount++;
      this.#give(slot);
    }
    if (this.#youngCount === 0) this.#youngRate = this.#youngWeighted = 0;
    return Math.max(0, this.#matureRate * this.windowMs + this.#youngRate * now - this.#youngWeighted);
  }

  #take(slot: number): void {
    const rate = this.#rate.get(slot);
    if (this.#flags.get(slot) & MATURED) this.#matureRate -= rate;
    else {
      this.#youngRate -= rate;
      this.#youngWeighted -= this.#registeredAt.get(slot) * rate;
    }
  }

  #give(slot: number): void {
    const rate = this.#rate.get(slot);
    if (this.#flags.get(slot) & MATURED) this.#matureRate += rate;
    else {
      this.#youngRate += rate;
      this.#youngWeighted += this.#registeredAt.get(slot) * rate;
    }
  }
}

/** Entries per chunk of the queue. */
const CHUNK = 4096;

/** A FIFO of (slot, time) in fixed chunks: pushing never copies, a drained chunk is dropped. */
class YoungQueue {
  readonly #slots: Int32Array[] = [];
  readonly #times: Float64Array[] = [];
  /** Position of the first entry in the first chunk, and one past the last in the last chunk. */
  #head = 0;
  #tail = CHUNK;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  push(slot: number, time: number): void {
    if (this.#tail === CHUNK) {
      this.#slots.push(new Int32Array(CHUNK));
      this.#times.push(new Float64Array(CHUNK));
      this.#tail = 0;
    }
    const last = this.#slots.length - 1;
    this.#slots[last]![this.#tail] = slot;
    this.#times[last]![this.#tail++] = time;
    this.#size++;
  }

  /** The time of the first entry; only when size > 0. */
  firstTime(): number {
    return this.#times[0]![this.#head]!;
  }

  /** Removes the first entry and returns its slot; only when size > 0. */
  shift(): number {
    const slot = this.#slots[0]![this.#head++]!;
    this.#size--;
    if (this.#head === CHUNK || this.#size === 0) {
      if (this.#size === 0) this.#tail = CHUNK;
      this.#slots.shift();
      this.#times.shift();
      this.#head = 0;
    }
    return slot;
  }
}
