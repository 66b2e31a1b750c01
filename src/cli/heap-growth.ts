import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../core/clock.js';

const MiB = 1024 * 1024;

/**
 * The growth a large heap gets: V8 collects the old generation once it is 1.5× what survived
 * the last major GC, instead of letting it reach up to 4× (V8's dynamic factor). At 1M
 * instances that kept the peak RSS at ~780 MiB instead of ~1.2 GiB; it costs ~12 % CPU per
 * Register, which is why a small node keeps V8's default.
 */
export const TIGHT_HEAP_GROWING_PERCENT = 50;
/**
 * Tightened once this much heap is in use: ~250k instances or more (a 100k node peaks at
 * ~155 MiB while registering at full speed, so it keeps the default's CPU).
 */
export const TIGHTEN_AT_BYTES = 256 * MiB;
/**
 * Back to V8's default below this. A quarter of {@link TIGHTEN_AT_BYTES}: V8 grows the heap at
 * most 4× what is live, so a heap that went back under this cannot reach the tightening mark
 * again unless what is live grows: the setting does not flap.
 */
export const RELAX_BELOW_BYTES = 64 * MiB;
/** Cheap (one `getHeapStatistics()`, a few µs) and often enough: V8 applies the flag at its next major GC anyway. */
export const HEAP_CHECK_INTERVAL_MS = 1000;

const FLAG = /^--heap[-_]growing[-_]percent(=|$)/;
/** 0 is V8's own setting: its dynamic growth (1.1× to 4× what survived, by GC and mutator speed). */
const DEFAULT_GROWTH = '--heap-growing-percent=0';

export interface HeapGrowthOptions {
  readonly clock: Clock;
  readonly logger?: Logger;
  /** Heap in use now, bytes (default: V8's `used_heap_size`). */
  readonly usedHeapBytes?: () => number;
  /** Applies a V8 flag to the running process (default: `v8.setFlagsFromString`). */
  readonly setFlag?: (flag: string) => void;
  /** The process's node options (default: `process.execArgv`): a heap growth given there wins. */
  readonly execArgv?: readonly string[];
  readonly tightenAtBytes?: number;
  readonly relaxBelowBytes?: number;
  readonly percent?: number;
  readonly intervalMs?: number;
}

/**
 * V8's heap growth adapted to the heap's size: a tighter growth ({@link TIGHT_HEAP_GROWING_PERCENT})
 * once the heap is large, V8's default again once it is small, with a wide gap between the two
 * marks. V8 reads `--heap-growing-percent` whenever it sets the next collection's limit (after
 * each major GC; checked with `--trace-gc-verbose` on Node 20), so a switch takes effect from
 * the next major GC. A `--heap-growing-percent` on node's command line is left alone.
 * The flag is process-wide: nodes sharing a process (tests) read the same heap and agree.
 */
export class HeapGrowth {
  readonly #clock: Clock;
  readonly #log: Logger | undefined;
  readonly #used: () => number;
  readonly #setFlag: (flag: string) => void;
  readonly #given: boolean;
  readonly #tightenAt: number;
  readonly #relaxBelow: number;
  readonly #percent: number;
  readonly #intervalMs: number;
  #tight = false;
  #timer: TimerHandle | undefined;

  constructor(options: HeapGrowthOptions) {
    this.#clock = options.clock;
    this.#log = options.logger?.child({ component: 'heap' });
    this.#used = options.usedHeapBytes ?? (() => getHeapStatistics().used_heap_size);
    this.#setFlag = options.setFlag ?? setFlagsFromString;
    this.#given = (options.execArgv ?? process.execArgv).some((arg) => FLAG.test(arg));
    this.#tightenAt = options.tightenAtBytes ?? TIGHTEN_AT_BYTES;
    this.#relaxBelow = options.relaxBelowBytes ?? RELAX_BELOW_BYTES;
    this.#percent = options.percent ?? TIGHT_HEAP_GROWING_PERCENT;
    this.#intervalMs = options.intervalMs ?? HEAP_CHECK_INTERVAL_MS;
  }

  /** Whether the tighter growth is applied now. */
  get tight(): boolean {
    return this.#tight;
  }

  /** Checks the heap every {@link HEAP_CHECK_INTERVAL_MS}; does nothing when node's command line set the growth. */
  start(): void {
    if (this.#given || this.#timer !== undefined) return;
    this.#schedule();
  }

  /** Stops checking and gives V8 its default growth back (silently: the node is stopping). */
  stop(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#tight) this.#setFlag(DEFAULT_GROWTH);
    this.#tight = false;
  }

  #schedule(): void {
    this.#timer = this.#clock.setTimeout(() => {
      this.#check();
      this.#schedule();
    }, this.#intervalMs);
  }

  #check(): void {
    const used = this.#used();
    if (!this.#tight && used >= this.#tightenAt) this.#apply(true, used);
    else if (this.#tight && used < this.#relaxBelow) this.#apply(false, used);
  }

  #apply(tight: boolean, used: number): void {
    const percent = tight ? this.#percent : 0;
    this.#setFlag(tight ? `--heap-growing-percent=${percent}` : DEFAULT_GROWTH);
    this.#tight = tight;
    this.#log?.info(
      { heapUsedMiB: Math.round(used / MiB), heapGrowingPercent: percent, thresholdMiB: Math.round((tight ? this.#tightenAt : this.#relaxBelow) / MiB) },
      tight ? 'heap growth tightened: the heap is large' : "heap growth back to V8's default: the heap is small",
    );
  }
}
