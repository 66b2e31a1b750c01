/**
 * `npm run bench -- --compare etcd [--quick] [--out FILE] [--only SHAPES]`: Roster and etcd side
 * by side on this machine (issue #12). Both run as their own processes on loopback (Roster as
 * `node bin/roster.js serve`, etcd from Debian's etcd-server with data on /dev/shm), driven by
 * the same load processes (bench/compare/load-worker.ts) with the same shapes, in alternating
 * rounds (Roster, etcd, Roster, etcd, …) so that a neighbour's load on this shared machine hits
 * both. The unary rows (register, heartbeat) are replayed by each load process's bench/replay
 * child (Go) from requests encoded before the round. Every row reports the servers' and the
 * load processes' CPU (replay children included) from /proc, so a client limit is not mistaken
 * for a server limit, and the ratio oriented so that > 1 means Roster did better. Targets are
 * issue #12's, reported (met / not met), never enforced.
 *
 * Shapes (see BENCHMARKS.md, "Roster vs etcd"): register, renewals, heartbeat, watch, size,
 * cluster; `--only` takes a comma-separated subset of these names. `--node-args="FLAGS"` passes
 * Node flags to every Roster process (a profiler, a preload, a V8 setting).
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { CountResult, Job, JobResult, Keys, ReadResult, System, WatchResult } from './jobs.js';
import { describeMachine, writeReport } from '../harness.js';
import { replayBinary } from '../replay.js';
import { LoadPool } from './load-pool.js';
import { ETCD_BIN, etcdVersion, killAllSync, rosterRunsFrom, type ServerGroup, startEtcd, startEtcdCluster, startRoster, startRosterCluster, type ServerProcess, stoppedOnSignal } from './servers.js';
import { advantage, cores, median, summarize, targetMet, type Better, type CompareTarget } from './stats.js';

export const SHAPES = ['register', 'renewals', 'heartbeat', 'watch', 'size', 'cluster'] as const;
export type Shape = (typeof SHAPES)[number];

const RESULTS = fileURLToPath(new URL('../results/compare-etcd.json', import.meta.url));
const MiB = 1024 * 1024;
/** Callers in flight for the unary shapes, split evenly over the load processes. */
const CALLERS = 64;
/** Un-acknowledged renewals per renewal stream (1 per message: 2,000 messages; batched: 20 messages of 100). */
const RENEWAL_WINDOW = 2_000;
const BATCH = 100;
const WATCH_RATES = [250, 1_000, 2_000] as const;
/** A paced write rate counts as held when this share of it was answered within the window. */
const RATE_HELD = 0.95;
/** The three-node row's background, as in issue #12 (and bench/replication.ts). */
const CLUSTER_RENEWALS_PER_SECOND = 10_000;
const CLUSTER_WRITES_PER_SECOND = 500;
const FILL_CONCURRENCY = 64;

export interface CompareBudget {
  readonly warmupMs: number;
  /** Rounds per system; they alternate Roster, etcd, Roster, etcd, …; the median round is reported. */
  readonly rounds: number;
  readonly roundMs: number;
  /** Paced-write window per watch round. */
  readonly watchMs: number;
  /** Timed whole-registry reads per system and size (after one untimed read). */
  readonly reads: number;
  /** Wait after filling before RSS is read; no GC is forced on either side. */
  readonly settleMs: number;
  readonly sizes: readonly number[];
  /** Renewed keys: Roster instances registered beforehand, etcd leases granted beforehand. */
  readonly pool: number;
  readonly clusterMs: number;
  /** Whether the three-node row also runs a three-member etcd cluster. */
  readonly clusterEtcd: boolean;
}

export const COMPARE_BUDGETS: Readonly<Record<'full' | 'quick', CompareBudget>> = {
  full: { warmupMs: 1_000, rounds: 3, roundMs: 2_000, watchMs: 3_000, reads: 5, settleMs: 3_000, sizes: [10_000, 100_000], pool: 10_000, clusterMs: 8_000, clusterEtcd: true },
  quick: { warmupMs: 300, rounds: 2, roundMs: 700, watchMs: 1_000, reads: 2, settleMs: 1_000, sizes: [10_000], pool: 2_000, clusterMs: 2_500, clusterEtcd: false },
};

/** One table row: Roster's number, etcd's, and what explains them. */
export interface CompareRow {
  readonly id: string;
  readonly shape: Shape;
  readonly title: string;
  readonly unit: string;
  readonly better: Better;
  readonly roster: number;
  readonly etcd: number | undefined;
  /** > 1: Roster did better (see stats.ts `advantage`). */
  readonly advantage: number | undefined;
  readonly serverCores: { readonly roster?: number; readonly etcd?: number };
  readonly loadCores: { readonly roster?: number; readonly etcd?: number };
  readonly target: CompareTarget | undefined;
  readonly met: boolean | undefined;
  /** Short text for the table's last column. */
  readonly note: string;
  readonly details: Readonly<Record<string, unknown>>;
}

/** What one measured round gives: a value plus the CPU both sides used in it. */
interface Sample {
  readonly value: number;
  readonly wallSeconds: number;
  readonly serverCpu: number;
  /** Seconds the server's threads waited, runnable, for a CPU (see ServerProcess.waitSeconds). */
  readonly serverWait: number;
  readonly loadCpu: number;
  readonly failed: number;
  readonly firstError?: string;
}

interface Measured {
  readonly value: number;
  readonly rounds: readonly number[];
  readonly serverCores: number;
  /** Server threads waiting for a CPU, in cores (seconds waited ÷ wall seconds). */
  readonly serverWaitCores: number;
  readonly loadCores: number;
  readonly failed: number;
  readonly firstError?: string;
}

/** Both systems' single-node servers, the shared load pool and the keys each renews. */
interface Pair {
  readonly roster: ServerProcess;
  readonly etcd: ServerProcess;
  readonly keys: { readonly roster: Keys; readonly etcd: Keys };
}

class Comparison {
  readonly rows: CompareRow[] = [];
  readonly #pool: LoadPool;
  readonly #budget: CompareBudget;

  constructor(
    pool: LoadPool,
    budget: CompareBudget,
    /** Node flags for every Roster process (`--node-args`): profilers, preloads, V8 settings. */
    readonly nodeArgs: readonly string[],
  ) {
    this.#pool = pool;
    this.#budget = budget;
  }

  /**
   * Runs a job on `workers` load processes against `servers` and takes one sample. Replayed jobs
   * are prepared (encoded, loaded by the replay children) before the clock and CPU readings start.
   */
  async sample(servers: ServerGroup | ServerProcess, workers: number, makeJob: (index: number) => Job, value: (results: JobResult[]) => number): Promise<Sample & { results: JobResult[] }> {
    const jobs = Array.from({ length: workers }, (_, i) => makeJob(i));
    await this.#pool.runOn(workers, (i) => ({ type: 'prepare', job: jobs[i]! }));
    const serverBefore = servers.cpuSeconds();
    const waitBefore = servers.waitSeconds();
    const loadBefore = this.#pool.cpuSeconds(workers);
    const start = performance.now();
    const results = await this.#pool.runOn(workers, (i) => jobs[i]!);
    const wallSeconds = (performance.now() - start) / 1000;
    const counts = results.flatMap((r) => (r.type === 'count' || r.type === 'watch' ? [r.result] : []));
    const firstError = counts.find((c) => c.firstError !== undefined)?.firstError;
    // The replay children are not in their load processes' /proc stat: they report their own CPU.
    const replayCpu = counts.reduce((sum, c) => sum + (c.replayCpuSeconds ?? 0), 0);
    return {
      value: value(results),
      wallSeconds,
      serverCpu: servers.cpuSeconds() - serverBefore,
      serverWait: servers.waitSeconds() - waitBefore,
      loadCpu: this.#pool.cpuSeconds(workers) - loadBefore + replayCpu,
      failed: counts.reduce((sum, c) => sum + c.failed, 0),
      ...(firstError === undefined ? {} : { firstError }),
      results,
    };
  }

  /**
   * A warm-up of each system, then `rounds` rounds of each, alternating Roster, etcd, Roster, …;
   * per system the median round and the cores over all its rounds.
   */
  async alternate<S extends Sample>(
    systems: readonly System[],
    warmup: (system: System) => Promise<unknown>,
    round: (system: System) => Promise<S>,
  ): Promise<Record<System, { measured: Measured; samples: S[] } | undefined>> {
    for (const system of systems) await warmup(system);
    const samples: Record<System, S[]> = { roster: [], etcd: [] };
    for (let i = 0; i < this.#budget.rounds; i++) {
      for (const system of systems) samples[system].push(await round(system));
    }
    const summary = (list: S[]): { measured: Measured; samples: S[] } | undefined => {
      if (list.length === 0) return undefined;
      const wall = list.reduce((sum, s) => sum + s.wallSeconds, 0);
      const firstError = list.find((s) => s.firstError !== undefined)?.firstError;
      return {
        samples: list,
        measured: {
          value: median(list.map((s) => s.value)),
          rounds: list.map((s) => round2(s.value)),
          serverCores: round2(
            cores(
              list.reduce((sum, s) => sum + s.serverCpu, 0),
              wall,
            ),
          ),
          serverWaitCores: round2(
            cores(
              list.reduce((sum, s) => sum + s.serverWait, 0),
              wall,
            ),
          ),
          loadCores: round2(
            cores(
              list.reduce((sum, s) => sum + s.loadCpu, 0),
              wall,
            ),
          ),
          failed: list.reduce((sum, s) => sum + s.failed, 0),
          ...(firstError === undefined ? {} : { firstError }),
        },
      };
    };
    return { roster: summary(samples.roster), etcd: summary(samples.etcd) };
  }

  addRow(row: Omit<CompareRow, 'advantage' | 'met'> & { readonly alsoRequired?: boolean }): void {
    const { alsoRequired, ...rest } = row;
    const adv = row.etcd === undefined ? undefined : advantage(row.roster, row.etcd, row.better);
    let met = targetMet(row.target, row.roster, adv);
    if (met !== undefined && alsoRequired !== undefined) met = met && alsoRequired;
    const complete: CompareRow = { ...rest, advantage: adv === undefined ? undefined : round2(adv), met };
    this.rows.push(complete);
    process.stderr.write(`  ${formatRow(complete)}\n`);
  }

  /** A throughput row from alternating rounds of a counting job. */
  async throughputRow(options: {
    pair: Pair;
    id: string;
    shape: Shape;
    title: string;
    unit: string;
    workers: number;
    systems?: readonly System[];
    job: (system: System, phase: string, index: number) => Job;
    target?: CompareTarget;
    note?: string;
    etcdFrom?: Measured;
  }): Promise<Measured | undefined> {
    const { pair, workers } = options;
    const rate = (results: JobResult[]): number => results.reduce((sum, r) => sum + (r.type === 'count' ? r.result.ok / r.result.seconds : 0), 0);
    let roundNo = 0;
    const result = await this.alternate(
      options.systems ?? ['roster', 'etcd'],
      (system) => this.sample(pair[system], workers, (i) => ({ ...options.job(system, 'warmup', i), durationMs: this.#budget.warmupMs }) as Job, rate),
      (system) => this.sample(pair[system], workers, (i) => options.job(system, `r${roundNo++}`, i), rate),
    );
    const roster = result.roster?.measured;
    if (roster === undefined) return undefined;
    const etcd = result.etcd?.measured ?? options.etcdFrom;
    this.addRow({
      id: options.id,
      shape: options.shape,
      title: options.title,
      unit: options.unit,
      better: 'higher',
      roster: roster.value,
      etcd: etcd?.value,
      serverCores: { roster: roster.serverCores, ...(etcd === undefined ? {} : { etcd: etcd.serverCores }) },
      loadCores: { roster: roster.loadCores, ...(etcd === undefined ? {} : { etcd: etcd.loadCores }) },
      target: options.target,
      note: [perOperation(roster, etcd), waiting(roster, etcd), failures(roster, etcd), options.note ?? ''].filter(Boolean).join('; '),
      details: { roster, ...(etcd === undefined ? {} : { etcd }), loadProcesses: workers },
    });
    return result.etcd?.measured;
  }

  get pool(): LoadPool {
    return this.#pool;
  }

  get budget(): CompareBudget {
    return this.#budget;
  }
}

/**
 * Server CPU per operation, µs: cores ÷ rate. Steadier than the rate itself when neighbours on
 * this shared machine leave either server short of CPU.
 */
function perOperation(roster: Measured, etcd: Measured | undefined): string {
  const us = (m: Measured | undefined): string => (m === undefined || !(m.value > 0) ? '-' : ((m.serverCores / m.value) * 1e6).toFixed(0));
  return `server CPU ${us(roster)} / ${us(etcd)} µs per op`;
}

/**
 * How much the servers' threads waited, runnable, for a CPU (in cores): Roster's one thread
 * loses that share of its time to other threads on the machine's cores (the load processes'
 * among them); etcd's goroutines move to whichever core is free.
 */
function waiting(roster: Measured, etcd: Measured | undefined): string {
  const cores = (m: Measured | undefined): string => (m === undefined || !Number.isFinite(m.serverWaitCores) ? '-' : m.serverWaitCores.toFixed(2));
  return `waiting for a CPU ${cores(roster)} / ${cores(etcd)} cores`;
}

function failures(roster: Measured, etcd: Measured | undefined): string {
  const parts = [roster.failed > 0 ? `Roster failed ${roster.failed} (${roster.firstError})` : '', etcd !== undefined && etcd.failed > 0 ? `etcd failed ${etcd.failed} (${etcd.firstError})` : ''];
  return parts.filter(Boolean).join('; ');
}

/** Registers the renewal pool on Roster and grants the lease pool on etcd (split over the load processes). */
async function preparePair(comparison: Comparison, roster: ServerProcess, etcd: ServerProcess): Promise<Pair> {
  const { pool, budget } = comparison;
  const split = (count: number, index: number): [number, number] => [Math.floor((count * index) / pool.size), Math.floor((count * (index + 1)) / pool.size)];
  const filled = await pool.runOn(pool.size, (i) => {
    const [from, to] = split(budget.pool, i);
    return { type: 'fill', system: 'roster', address: roster.address, from, to, prefix: 'hb', concurrency: FILL_CONCURRENCY / pool.size };
  });
  expectAll(filled, budget.pool, 'Roster renewal pool');
  const granted = await pool.runOn(pool.size, (i) => {
    const [from, to] = split(budget.pool, i);
    return { type: 'grant', address: etcd.address, count: to - from, concurrency: FILL_CONCURRENCY / pool.size };
  });
  const leases = granted.flatMap((r) => (r.type === 'leases' ? r.leases : []));
  if (leases.length !== budget.pool) throw new Error(`granted ${leases.length} of ${budget.pool} etcd leases`);
  return { roster, etcd, keys: { roster: { system: 'roster', prefix: 'hb', size: budget.pool }, etcd: { system: 'etcd', leases } } };
}

function expectAll(results: readonly JobResult[], expected: number, what: string): void {
  const counts = results.flatMap((r) => (r.type === 'count' ? [r.result] : []));
  const ok = counts.reduce((sum, c) => sum + c.ok, 0);
  if (ok !== expected) throw new Error(`${what}: ${ok} of ${expected} written (${counts.find((c) => c.firstError)?.firstError ?? 'no error'})`);
}

/** register: Roster Register vs etcd Put of the same record's protobuf bytes under a pooled lease. */
async function registerShape(comparison: Comparison, pair: Pair): Promise<void> {
  for (const workers of [1, 2]) {
    await comparison.throughputRow({
      pair,
      id: `register-${workers}p`,
      shape: 'register',
      title: `register, ${CALLERS} callers, ${workers} load process${workers > 1 ? 'es' : ''}`,
      unit: 'writes/s',
      workers,
      job: (system, phase, i) => ({
        type: 'register',
        system,
        address: pair[system].address,
        concurrency: CALLERS / workers,
        durationMs: comparison.budget.roundMs,
        prefix: `reg-${workers}p-${phase}-${i}`,
        keys: pair.keys[system],
      }),
      target: { minAdvantage: 2, text: '≥ 2×' },
    });
  }
}

/**
 * renewals: Roster Heartbeats (one renewal per message, and 100 per message) vs etcd
 * LeaseKeepAlive (one lease per message: etcd has no batching, so the batched row is compared
 * with the same etcd rounds). 1 stream from one load process; 4 streams, 2 on each of two.
 */
async function renewalsShape(comparison: Comparison, pair: Pair): Promise<void> {
  for (const streams of [1, 4]) {
    const workers = streams === 1 ? 1 : 2;
    const job =
      (perMessage: number) =>
      (system: System, _phase: string, _i: number): Job => ({
        type: 'renewals',
        system,
        address: pair[system].address,
        streams: streams / workers,
        perMessage,
        window: RENEWAL_WINDOW,
        durationMs: comparison.budget.roundMs,
        keys: pair.keys[system],
      });
    const label = `${streams} stream${streams > 1 ? 's' : ''}`;
    const etcd = await comparison.throughputRow({
      pair,
      id: `renewals-${streams}s`,
      shape: 'renewals',
      title: `renewals, one per message, ${label}`,
      unit: 'renewals/s',
      workers,
      job: job(1),
      target: { minAdvantage: 2, text: '≥ 2×' },
    });
    await comparison.throughputRow({
      pair,
      id: `renewals-${streams}s-batched`,
      shape: 'renewals',
      title: `renewals, Roster ${BATCH} per message (etcd: one per message), ${label}`,
      unit: 'renewals/s',
      workers,
      systems: ['roster'],
      job: job(BATCH),
      ...(etcd === undefined ? {} : { etcdFrom: etcd }),
      note: 'etcd has no batched keep-alive: its one-per-message rounds above',
    });
  }
}

/** heartbeat: Roster's unary Heartbeat; etcd has no unary keep-alive, so the row is Roster's only. */
async function heartbeatShape(comparison: Comparison, pair: Pair): Promise<void> {
  await comparison.throughputRow({
    pair,
    id: 'heartbeat-unary',
    shape: 'heartbeat',
    title: `unary Heartbeat, ${CALLERS} callers, 1 load process`,
    unit: 'renewals/s',
    workers: 1,
    systems: ['roster'],
    job: () => ({ type: 'heartbeat', address: pair.roster.address, concurrency: CALLERS, durationMs: comparison.budget.roundMs, keys: pair.keys.roster }),
    note: 'Roster only: etcd has no unary keep-alive (its keep-alive is the stream above)',
  });
}

/** watch: open-loop writes at each rate, write → event latency on one watch, one load process. */
async function watchShape(comparison: Comparison, pair: Pair): Promise<void> {
  const { budget } = comparison;
  let app = 0;
  for (const perSecond of WATCH_RATES) {
    const job = (system: System, durationMs: number): Job => ({
      type: 'watch-latency',
      system,
      writeAddress: pair[system].address,
      watchAddress: pair[system].address,
      perSecond,
      durationMs,
      app: `watch-${perSecond}-${app++}`,
      keys: pair.keys[system],
    });
    const p99 = (results: JobResult[]): number => {
      const result = results[0];
      return result?.type === 'watch' ? summarize(result.result.latenciesMs).p99 : Number.NaN;
    };
    const result = await comparison.alternate(
      ['roster', 'etcd'],
      (system) => comparison.sample(pair[system], 1, () => job(system, budget.warmupMs), p99),
      (system) => comparison.sample(pair[system], 1, () => job(system, budget.watchMs), p99),
    );
    const pooled = (system: System) => {
      const runs = (result[system]?.samples ?? []).flatMap((s) => s.results).flatMap((r) => (r.type === 'watch' ? [r.result] : []));
      const latency = summarize(runs.flatMap((r) => r.latenciesMs));
      const sustained = median(runs.map((r) => r.sustainedPerSecond));
      const lost = runs.reduce((sum, r) => sum + (r.ok - r.events), 0);
      const skipped = runs.reduce((sum, r) => sum + r.skipped, 0);
      return { latency, sustained, lost, skipped, failed: runs.reduce((sum, r) => sum + r.failed, 0), measured: result[system]?.measured };
    };
    const roster = pooled('roster');
    const etcd = pooled('etcd');
    const hasTarget = perSecond >= 1_000;
    comparison.addRow({
      id: `watch-${perSecond}`,
      shape: 'watch',
      title: `watch: write → event p99, ${perSecond.toLocaleString('en-US')} writes/s asked`,
      unit: 'ms',
      better: 'lower',
      roster: round2(roster.latency.p99),
      etcd: round2(etcd.latency.p99),
      serverCores: { roster: roster.measured?.serverCores, etcd: etcd.measured?.serverCores },
      loadCores: { roster: roster.measured?.loadCores, etcd: etcd.measured?.loadCores },
      target: hasTarget ? { minAdvantage: 1, text: `≤ etcd, rate held (≥ ${RATE_HELD * 100} %)` } : undefined,
      ...(hasTarget ? { alsoRequired: roster.sustained >= RATE_HELD * perSecond } : {}),
      note:
        `p50 ${roster.latency.p50.toFixed(1)} / ${etcd.latency.p50.toFixed(1)} ms, max ${roster.latency.max.toFixed(0)} / ${etcd.latency.max.toFixed(0)} ms, ` +
        `sustained ${Math.round(roster.sustained)} / ${Math.round(etcd.sustained)} writes/s` +
        (roster.lost + etcd.lost + roster.skipped + etcd.skipped + roster.failed + etcd.failed > 0
          ? `; lost ${roster.lost} / ${etcd.lost}, skipped ${roster.skipped} / ${etcd.skipped}, failed ${roster.failed} / ${etcd.failed}`
          : ''),
      details: { perSecond, roster: { ...roster, latency: rounded(roster.latency) }, etcd: { ...etcd, latency: rounded(etcd.latency) } },
    });
  }
}

/**
 * size: fresh servers, RSS empty; then for each size, fill both the same way over the wire
 * (Roster Register; etcd LeaseGrant + Put, one lease per instance), let both settle for the
 * same fixed time without forcing a GC, read VmRSS, then time full reads (raw and decoded).
 */
async function sizeShape(comparison: Comparison): Promise<void> {
  const { pool, budget } = comparison;
  const [roster, etcd] = await Promise.all([startRoster({ nodeArgs: comparison.nodeArgs }), startEtcd()]);
  const pair = { roster, etcd };
  try {
    const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, budget.settleMs));
    const rssRow = (size: number, target: CompareTarget | undefined): void => {
      const r = roster.memory();
      const e = etcd.memory();
      comparison.addRow({
        id: `rss-${size}`,
        shape: 'size',
        title: `server RSS, ${size.toLocaleString('en-US')} instances (settled ${budget.settleMs} ms, no forced GC)`,
        unit: 'MiB',
        better: 'lower',
        roster: round2(r.rss / MiB),
        etcd: round2(e.rss / MiB),
        serverCores: {},
        loadCores: {},
        target,
        note: `peak ${Math.round(r.peakRss / MiB)} / ${Math.round(e.peakRss / MiB)} MiB`,
        details: { roster: r, etcd: e },
      });
    };
    await settle();
    rssRow(0, { rosterAtMost: 60, text: 'Roster ≤ 60 MiB' });
    let filled = 0;
    for (const size of budget.sizes) {
      for (const system of ['roster', 'etcd'] as const) {
        const results = await pool.runOn(pool.size, (i) => ({
          type: 'fill',
          system,
          address: pair[system].address,
          from: filled + Math.floor(((size - filled) * i) / pool.size),
          to: filled + Math.floor(((size - filled) * (i + 1)) / pool.size),
          prefix: 'size',
          concurrency: FILL_CONCURRENCY / pool.size,
        }));
        expectAll(results, size - filled, `${system} fill to ${size}`);
      }
      filled = size;
      await settle();
      rssRow(size, size === 100_000 ? { minAdvantage: 1, text: '≤ etcd' } : undefined);
      for (const decode of [false, true]) await readRow(comparison, pair, size, decode);
    }
  } finally {
    await Promise.all([roster.stop(), etcd.stop()]);
  }
}

/** One full-read row: reads alternate Roster, etcd in `rounds` groups; the median read. */
async function readRow(comparison: Comparison, pair: { roster: ServerProcess; etcd: ServerProcess }, size: number, decode: boolean): Promise<void> {
  const { budget } = comparison;
  const times = Math.max(1, Math.ceil(budget.reads / budget.rounds));
  const job = (system: System): Job => ({ type: 'full-read', system, address: pair[system].address, decode, expected: size, times });
  const durations = (results: JobResult[]): ReadResult | undefined => (results[0]?.type === 'read' ? results[0].result : undefined);
  const result = await comparison.alternate(
    ['roster', 'etcd'],
    async () => {},
    (system) =>
      comparison.sample(
        pair[system],
        1,
        () => job(system),
        (results) => median(durations(results)?.durationsMs ?? []),
      ),
  );
  const reads = (system: System): { all: number[]; bytes: number; valueDecode: number[] } => {
    const list = (result[system]?.samples ?? []).flatMap((s) => (s.results[0]?.type === 'read' ? [s.results[0].result] : []));
    return { all: list.flatMap((r) => r.durationsMs), bytes: list[0]?.bytes ?? 0, valueDecode: list.flatMap((r) => r.valueDecodeMs ?? []) };
  };
  const r = reads('roster');
  const e = reads('etcd');
  comparison.addRow({
    id: `read-${size}-${decode ? 'decoded' : 'raw'}`,
    shape: 'size',
    title: `full read, ${size.toLocaleString('en-US')} instances, ${decode ? 'decoded by proto-loader' : 'raw bytes'}`,
    unit: 'ms',
    better: 'lower',
    roster: round2(median(r.all)),
    etcd: round2(median(e.all)),
    serverCores: { roster: result.roster?.measured.serverCores, etcd: result.etcd?.measured.serverCores },
    loadCores: { roster: result.roster?.measured.loadCores, etcd: result.etcd?.measured.loadCores },
    target: decode && size === 100_000 ? { minAdvantage: 1, text: 'faster than etcd' } : undefined,
    note: decode
      ? `etcd includes decoding each value into an Instance: median ${median(e.valueDecode).toFixed(1)} ms`
      : `${(r.bytes / MiB).toFixed(1)} / ${(e.bytes / MiB).toFixed(1)} MiB on the wire`,
    details: { readsMs: { roster: r.all.map(round2), etcd: e.all.map(round2) }, bytes: { roster: r.bytes, etcd: e.bytes }, ...(decode ? { etcdValueDecodeMs: e.valueDecode.map(round2) } : {}) },
  });
}

/**
 * cluster: three nodes; writes at A (500/s, open loop) each timed to its event on a watch at C,
 * with 10,000 renewals/s spread over A, B and C from a second load process (Roster: Heartbeats
 * batched by 100, as HeartbeatStream sends them; etcd: LeaseKeepAlive, one lease per message).
 */
async function clusterShape(comparison: Comparison): Promise<void> {
  const { budget } = comparison;
  const renewed = 3_000;
  const measure = async (system: System): Promise<{ latency: ReturnType<typeof summarize>; watch: WatchResult; renewals: CountResult; serverCores: number; loadCores: number } | undefined> => {
    const group = system === 'roster' ? await startRosterCluster(comparison.nodeArgs) : await startEtcdCluster();
    try {
      const [a, b, c] = group.servers as [ServerProcess, ServerProcess, ServerProcess];
      let keys: Keys;
      if (system === 'roster') {
        expectAll(
          await comparison.pool.runOn(1, () => ({ type: 'fill', system, address: a.address, from: 0, to: renewed, prefix: 'hb', concurrency: FILL_CONCURRENCY })),
          renewed,
          'cluster renewal pool',
        );
        keys = { system, prefix: 'hb', size: renewed };
        // Renewals at B and C need the pool replicated there first.
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      } else {
        const granted = await comparison.pool.runOn(1, () => ({ type: 'grant', address: a.address, count: renewed, concurrency: FILL_CONCURRENCY }));
        keys = { system, leases: granted[0]?.type === 'leases' ? granted[0].leases : [] };
      }
      const job = (index: number, durationMs: number): Job =>
        index === 0
          ? { type: 'watch-latency', system, writeAddress: a.address, watchAddress: c.address, perSecond: CLUSTER_WRITES_PER_SECOND, durationMs, app: `probe-${durationMs}`, keys }
          : {
              type: 'paced-renewals',
              system,
              addresses: [a.address, b.address, c.address],
              perSecond: CLUSTER_RENEWALS_PER_SECOND,
              perMessage: system === 'roster' ? BATCH : 1,
              durationMs,
              keys,
            };
      await comparison.sample(
        group,
        2,
        (i) => job(i, budget.warmupMs),
        () => 0,
      ); // a warm-up
      const sample = await comparison.sample(
        group,
        2,
        (i) => job(i, budget.clusterMs),
        () => 0,
      );
      const watch = sample.results[0]?.type === 'watch' ? sample.results[0].result : undefined;
      const renewals = sample.results[1]?.type === 'count' ? sample.results[1].result : undefined;
      if (watch === undefined || renewals === undefined) throw new Error('cluster: unexpected job results');
      return {
        latency: summarize(watch.latenciesMs),
        watch: { ...watch, latenciesMs: [] },
        renewals,
        serverCores: round2(cores(sample.serverCpu, sample.wallSeconds)),
        loadCores: round2(cores(sample.loadCpu, sample.wallSeconds)),
      };
    } finally {
      await group.stop();
    }
  };
  const roster = await measure('roster');
  const etcd = budget.clusterEtcd ? await measure('etcd') : undefined;
  if (roster === undefined) return;
  const describe = (m: NonNullable<typeof roster>): string =>
    `p50 ${m.latency.p50.toFixed(1)} ms, max ${m.latency.max.toFixed(0)} ms, ${Math.round(m.watch.sustainedPerSecond)} writes/s, ${Math.round(m.renewals.ok / m.renewals.seconds)} renewals/s` +
    (m.renewals.failed + (m.renewals.skipped ?? 0) > 0 ? ` (${m.renewals.failed} failed, ${m.renewals.skipped ?? 0} skipped)` : '');
  comparison.addRow({
    id: 'cluster-watch-p99',
    shape: 'cluster',
    title: `3 nodes: write at A → event at C, p99 (${CLUSTER_RENEWALS_PER_SECOND.toLocaleString('en-US')} renewals/s + ${CLUSTER_WRITES_PER_SECOND} writes/s)`,
    unit: 'ms',
    better: 'lower',
    roster: round2(roster.latency.p99),
    etcd: etcd === undefined ? undefined : round2(etcd.latency.p99),
    serverCores: { roster: roster.serverCores, ...(etcd === undefined ? {} : { etcd: etcd.serverCores }) },
    loadCores: { roster: roster.loadCores, ...(etcd === undefined ? {} : { etcd: etcd.loadCores }) },
    target: { rosterAtMost: 20, text: 'Roster ≤ 20 ms' },
    note: `Roster ${describe(roster)}${etcd === undefined ? '; etcd cluster not run (--quick)' : `; etcd ${describe(etcd)}`}`,
    details: { roster: { ...roster, latency: rounded(roster.latency) }, ...(etcd === undefined ? {} : { etcd: { ...etcd, latency: rounded(etcd.latency) } }) },
  });
}

export interface CompareOptions {
  readonly quick: boolean;
  readonly out?: string;
  readonly only?: readonly string[];
  /** Node flags for the Roster processes, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` (their stdout is not kept). */
  readonly nodeArgs?: readonly string[];
}

/** Runs the comparison; answers the process exit code (1: a shape failed, 2: etcd missing or bad arguments). */
export async function runCompareEtcd(options: CompareOptions): Promise<number> {
  const only = options.only ?? SHAPES;
  const unknown = only.filter((s) => !(SHAPES as readonly string[]).includes(s));
  if (unknown.length > 0) {
    console.error(`--compare etcd: unknown shape(s) ${unknown.join(', ')}; shapes are ${SHAPES.join(', ')}`);
    return 2;
  }
  const version = etcdVersion();
  if (version === undefined) {
    console.error(`--compare etcd needs etcd at ${ETCD_BIN} (Debian's etcd-server): apt-get install -y etcd-server`);
    return 2;
  }
  if (only.includes('register') || only.includes('heartbeat')) {
    try {
      replayBinary();
    } catch (err) {
      console.error(`--compare etcd: ${err instanceof Error ? err.message : String(err)}`);
      return 2;
    }
  }
  const budget = COMPARE_BUDGETS[options.quick ? 'quick' : 'full'];
  const runsFrom = rosterRunsFrom();
  if (runsFrom !== 'dist') process.stderr.write('note: bin/roster.js will run src/ through tsx (dist/ is missing or older than src/); `npm run build` first to measure what `npm ci` installs\n');
  const startedAt = new Date();
  const loadBefore = loadavg();
  const pool = await LoadPool.start(2);
  const cleanup = (): void => {
    pool.killSync();
    killAllSync();
  };
  process.on('exit', cleanup);
  const comparison = new Comparison(pool, budget, options.nodeArgs ?? []);
  const wants = (shape: Shape): boolean => only.includes(shape);
  /** A shape that fails is reported and the run goes on with the next one; the exit code says so. */
  const errors: { shape: string; error: string }[] = [];
  const attempt = async (shape: string, run: () => Promise<void>): Promise<void> => {
    process.stderr.write(`[${elapsed(startedAt)}] ${shape}\n`);
    try {
      await run();
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      errors.push({ shape, error });
      process.stderr.write(`  ${shape} failed: ${error}\n`);
    }
  };
  await stoppedOnSignal(
    () => pool.killSync(),
    async () => {
      try {
        const singleNode = SHAPES.filter((s) => s !== 'size' && s !== 'cluster' && wants(s));
        if (singleNode.length > 0) {
          await attempt(singleNode.join(', '), async () => {
            const [roster, etcd] = await Promise.all([startRoster({ nodeArgs: comparison.nodeArgs }), startEtcd()]);
            try {
              process.stderr.write(`Roster ${roster.address} (pid ${roster.pid}), etcd ${version} ${etcd.address} (pid ${etcd.pid}); preparing ${budget.pool} renewal keys on each\n`);
              const pair = await preparePair(comparison, roster, etcd);
              if (wants('register')) await attempt('register', () => registerShape(comparison, pair));
              if (wants('renewals')) await attempt('renewals', () => renewalsShape(comparison, pair));
              if (wants('heartbeat')) await attempt('heartbeat', () => heartbeatShape(comparison, pair));
              if (wants('watch')) await attempt('watch', () => watchShape(comparison, pair));
            } finally {
              await Promise.all([roster.stop(), etcd.stop()]);
            }
          });
        }
        if (wants('size')) await attempt('size', () => sizeShape(comparison));
        if (wants('cluster')) await attempt('cluster', () => clusterShape(comparison));
      } finally {
        pool.stop();
        killAllSync();
        process.off('exit', cleanup);
      }
    },
  );

  const report = {
    startedAt: startedAt.toISOString(),
    seconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
    quick: options.quick,
    budget,
    etcdVersion: version,
    rosterRunsFrom: runsFrom,
    loadProcesses: pool.size,
    machine: describeMachine(loadBefore),
    rows: comparison.rows,
    errors,
  };
  console.log(compareTable(comparison.rows));
  console.log(
    `\nRoster/etcd: > 1 means Roster did better (throughput Roster ÷ etcd; latency, time and memory etcd ÷ Roster). ` +
      `Cores: server / load processes, Roster | etcd. Roster from ${runsFrom}, etcd ${version}; load average (1 min) before ${report.machine.loadAverageBefore[0]}, after ${report.machine.loadAverageAfter[0]}; ${report.seconds} s`,
  );
  writeReport(report, RESULTS, options.out);
  for (const { shape, error } of errors) console.error(`FAILED ${shape}: ${error}`);
  return errors.length === 0 ? 0 : 1;
}

function elapsed(since: Date): string {
  return `${Math.round((Date.now() - since.getTime()) / 1000)} s`;
}

function formatValue(value: number | undefined, unit: string): string {
  if (value === undefined || !Number.isFinite(value)) return '-';
  if (unit === 'ms' || unit === 'MiB') return value.toFixed(1);
  return Math.round(value).toLocaleString('en-US');
}

function formatCores(pair: { readonly roster?: number; readonly etcd?: number }): string {
  if (pair.roster === undefined && pair.etcd === undefined) return '-';
  const one = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(2));
  return `${one(pair.roster)} \\| ${one(pair.etcd)}`;
}

function cells(row: CompareRow): string[] {
  return [
    row.title,
    formatValue(row.roster, row.unit),
    formatValue(row.etcd, row.unit),
    row.unit,
    row.advantage === undefined ? '-' : `${row.advantage.toFixed(2)}×`,
    formatCores(row.serverCores),
    formatCores(row.loadCores),
    row.target?.text ?? '-',
    row.met === undefined ? '-' : row.met ? 'yes' : 'no',
    row.note || '-',
  ];
}

function formatRow(row: CompareRow): string {
  return cells(row).join(' | ');
}

/** A Markdown table, so the output can be pasted into BENCHMARKS.md as it is. */
export function compareTable(rows: readonly CompareRow[]): string {
  const header = ['shape', 'Roster', 'etcd', 'unit', 'Roster/etcd', 'server cores R \\| E', 'load cores R \\| E', 'target (#12)', 'met', 'notes (Roster / etcd)'];
  const body = rows.map(cells);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((c) => c[i]!.length)));
  const line = (c: readonly string[]): string => `| ${c.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

function rounded(summary: ReturnType<typeof summarize>): ReturnType<typeof summarize> {
  return { count: summary.count, p50: round2(summary.p50), p99: round2(summary.p99), max: round2(summary.max) };
}
