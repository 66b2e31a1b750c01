import type { Clock } from '../core/clock.js';

/**
 * A token bucket on the injected monotonic clock: holds up to `burst` tokens, refilled at
 * `ratePerSecond`. Caps client writes at what one node can apply and replicate, while
 * letting a fleet's synchronised heartbeats through in a burst.
 */
export class TokenBucket {
  readonly #clock: Clock;
  readonly #ratePerMs: number;
  readonly #burst: number;
  #tokens: number;
  #refilledAt: number;

  constructor(options: { ratePerSecond: number; burst: number; clock: Clock }) {
    if (!(options.ratePerSecond > 0) || !(options.burst >= 1)) {
      throw new RangeError('a token bucket needs ratePerSecond > 0 and burst >= 1');
    }
    this.#clock = options.clock;
    this.#ratePerMs = options.ratePerSecond / 1000;
    this.#burst = options.burst;
    this.#tokens = options.burst;
    this.#refilledAt = options.clock.now();
  }

  /** Takes one token if there is one. */
  tryTake(): boolean {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#refilledAt) * this.#ratePerMs);
    this.#refilledAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
