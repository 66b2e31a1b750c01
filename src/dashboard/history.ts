/** One sample of the node's replication state, taken every tick. */
export interface Sample {
  /** Wall time of the sample (epoch ms). */
  readonly at: number;
  /** Tasks queued for all peers together. */
  readonly queueDepth: number;
  /** Mean replication lag of the writes applied here during the tick (ms); null when none came. */
  readonly lagMs: number | null;
  /** Largest lag of the tick (ms); null when none came. */
  readonly lagMaxMs: number | null;
  /** Instances evicted during the tick. */
  readonly evictions: number;
}

/**
 * The last `capacity` samples, oldest first, for the overview's sparklines. Lag comes in as
 * observations (one per replicated write, from the replication service) and leaves as the
 * tick's mean and maximum, so the sparkline costs the same at 10 or 10k writes a second.
 */
export class History {
  readonly #capacity: number;
  readonly #samples: Sample[] = [];
  #lagSum = 0;
  #lagCount = 0;
  #lagMax = 0;
  #lastEvictions: number | undefined;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** One replicated write applied here, `seconds` after its origin applied it. */
  observeLag(seconds: number): void {
    const ms = seconds * 1000;
    this.#lagSum += ms;
    this.#lagCount++;
    if (ms > this.#lagMax) this.#lagMax = ms;
  }

  /** Closes the current tick: `evictionsTotal` is the registry's monotonic counter. */
  sample(at: number, queueDepth: number, evictionsTotal: number): void {
    const lag = this.#lagCount > 0;
    this.#samples.push({
      at,
      queueDepth,
      lagMs: lag ? round2(this.#lagSum / this.#lagCount) : null,
      lagMaxMs: lag ? round2(this.#lagMax) : null,
      evictions: evictionsTotal - (this.#lastEvictions ?? evictionsTotal),
    });
    if (this.#samples.length > this.#capacity) this.#samples.shift();
    this.#lastEvictions = evictionsTotal;
    this.#lagSum = this.#lagCount = this.#lagMax = 0;
  }

  samples(): readonly Sample[] {
    return this.#samples;
  }
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
