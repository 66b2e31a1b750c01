import { PerformanceObserver, constants } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import type { Logger } from 'pino';

const MiB = 1024 * 1024;

/**
 * How much the old generation may grow between two major GCs once the heap is large. While a
 * node registers at full speed much of that growth is garbage (records replaced, request and
 * response buffers), and a major GC's atomic pause grows with the garbage it clears (pages
 * evacuated), not only with what lives. With node:http2 on the gRPC port, which made each
 * request header value an external string that only a major GC finalizes, that was ~1.5-2 ms
 * per MiB died on a 2-core box (1M fill: 47-57 MiB died → 80-105 ms); with the port's own HTTP/2
 * (src/grpc/http2/) the longest major GC of a 1M fill was 22 ms (BENCHMARKS.md). A fixed amount
 * keeps each pause bounded whatever the size of the registry, where a fixed proportion (V8's
 * 1.1× to 4×) lets it grow with the registry. Not less: with 32 MiB at 100k instances (40 %
 * growth), a plain 107 MiB `GET /eureka/apps`, then inflated in chunks on every read (now once
 * per revision, src/eureka/routes.ts), set off a major GC every ~110 ms (its buffers count
 * against the limit): 150 → 480 ms of CPU per read. The price is marking the whole heap more
 * often: ~35-40 major GCs in a 1M fill (V8's own growth: 17-29).
 */
export const GROWTH_BUDGET_BYTES = 40 * MiB;
/**
 * The growth is bounded once this much survives a major GC (~30k instances). A setting takes
 * effect one collection later, and V8's own growth lets ~4× this build up before that
 * collection: at 24 MiB a 1M fill's fourth major GC freed 57 MiB in a 100 ms pause.
 */
export const TIGHTEN_AT_BYTES = 16 * MiB;
/** Back to V8's default once less than this survives (half the tightening mark: no flapping). */
export const RELAX_BELOW_BYTES = 8 * MiB;
/**
 * The growth while bounded: at most 4× what survived (V8's own ceiling), so that a heap just
 * past the tightening mark grows by the whole budget too; at least 1.1× (V8's own floor).
 * Capped at 2× before, a registry of 20-40k instances taking 2,000 new ones a second ran a
 * major GC every 6-7 s (3-7 ms pauses, incremental steps up to 8 ms), most of its Watch p99.
 */
export const MAX_HEAP_GROWING_PERCENT = 300;
export const MIN_HEAP_GROWING_PERCENT = 10;

const FLAG = /^--heap[-_]growing[-_]percent(=|$)/;
/** 0 is V8's own setting: its dynamic growth (1.1× to 4× what survived, by GC and mutator speed). */
const DEFAULT_PERCENT = 0;

export interface HeapGrowthOptions {
  readonly logger?: Logger;
  /** Heap in use now, bytes (default: V8's `used_heap_size`); read right after a major GC, it is what survived. */
  readonly usedHeapBytes?: () => number;
  /** Calls `listener` after every major GC; returns how to stop (default: a perf_hooks 'gc' observer). */
  readonly onMajorGc?: (listener: () => void) => () => void;
  /** Applies a V8 flag to the running process (default: `v8.setFlagsFromString`). */
  readonly setFlag?: (flag: string) => void;
  /** The process's node options (default: `process.execArgv`): a heap growth given there wins. */
  readonly execArgv?: readonly string[];
  readonly budgetBytes?: number;
  readonly tightenAtBytes?: number;
  readonly relaxBelowBytes?: number;
}

/**
 * V8's heap growth bounded to {@link GROWTH_BUDGET_BYTES} per major GC once the heap is large
 * (`--heap-growing-percent` = budget ÷ what survived, within
 * [{@link MIN_HEAP_GROWING_PERCENT}, {@link MAX_HEAP_GROWING_PERCENT}]), V8's default while it is
 * small. Decided after each major GC from what survived it: V8 reads the flag whenever it sets
 * the next collection's limit (after each major GC; checked with `--trace-gc-verbose` on
 * Node 20), so a setting takes effect one collection later. A `--heap-growing-percent` on
 * node's command line is left alone. The flag is process-wide: nodes sharing a process (tests)
 * read the same heap and agree.
 */
export class HeapGrowth {
  readonly #log: Logger | undefined;
  readonly #used: () => number;
  readonly #onMajorGc: (listener: () => void) => () => void;
  readonly #setFlag: (flag: string) => void;
  readonly #given: boolean;
  readonly #budget: number;
  readonly #tightenAt: number;
  readonly #relaxBelow: number;
  #percent = DEFAULT_PERCENT;
  #unsubscribe: (() => void) | undefined;

  constructor(options: HeapGrowthOptions = {}) {
    this.#log = options.logger?.child({ component: 'heap' });
    this.#used = options.usedHeapBytes ?? (() => getHeapStatistics().used_heap_size);
    this.#onMajorGc = options.onMajorGc ?? observeMajorGcs;
    this.#setFlag = options.setFlag ?? setFlagsFromString;
    this.#given = (options.execArgv ?? process.execArgv).some((arg) => FLAG.test(arg));
    this.#budget = options.budgetBytes ?? GROWTH_BUDGET_BYTES;
    this.#tightenAt = options.tightenAtBytes ?? TIGHTEN_AT_BYTES;
    this.#relaxBelow = options.relaxBelowBytes ?? RELAX_BELOW_BYTES;
  }

  /** Whether the growth is bounded now. */
  get tight(): boolean {
    return this.#percent !== DEFAULT_PERCENT;
  }

  /** The `--heap-growing-percent` applied now (0: V8's default). */
  get percent(): number {
    return this.#percent;
  }

  /** Follows every major GC; does nothing when node's command line set the growth. */
  start(): void {
    if (this.#given || this.#unsubscribe !== undefined) return;
    this.#unsubscribe = this.#onMajorGc(() => this.#afterMajorGc());
  }

  /** Stops following and gives V8 its default growth back (silently: the node is stopping). */
  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    if (this.tight) this.#setFlag(`--heap-growing-percent=${DEFAULT_PERCENT}`);
    this.#percent = DEFAULT_PERCENT;
  }

  #afterMajorGc(): void {
    const live = this.#used();
    const tight = this.tight ? live >= this.#relaxBelow : live >= this.#tightenAt;
    const percent = tight ? Math.min(MAX_HEAP_GROWING_PERCENT, Math.max(MIN_HEAP_GROWING_PERCENT, Math.floor((100 * this.#budget) / live))) : DEFAULT_PERCENT;
    if (percent === this.#percent) return;
    const switched = tight !== this.tight;
    this.#setFlag(`--heap-growing-percent=${percent}`);
    this.#percent = percent;
    const fields = { heapUsedMiB: Math.round(live / MiB), heapGrowingPercent: percent, budgetMiB: Math.round(this.#budget / MiB) };
    if (!switched) this.#log?.debug(fields, 'heap growth adjusted to what survived');
    else if (tight) this.#log?.info(fields, 'heap growth bounded: the heap is large');
    else this.#log?.info(fields, "heap growth back to V8's default: the heap is small");
  }
}

/** Major GCs as node's perf_hooks report them (one entry each, shortly after the collection). */
function observeMajorGcs(listener: () => void): () => void {
  const observer = new PerformanceObserver((list) => {
    if (list.getEntries().some((e) => (e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)) listener();
  });
  observer.observe({ entryTypes: ['gc'] });
  return () => observer.disconnect();
}
