/**
 * `npm run bench -- --compare eureka [--quick]`: the Netflix Eureka server (Spring Cloud
 * Netflix 4.3 / eureka-core 2.0.4 on Spring Boot 3.5, Java 17, JVM defaults; a Maven project
 * in bench/eureka-server) and Roster (`node bin/roster.js serve`, write rate limit lifted),
 * driven with the same records and shapes in one run, alternating rounds where they compete
 * for the CPU. Prints a Markdown table and writes bench/results/compare-eureka.json.
 *
 * The run, in order (see BENCHMARKS.md, "Roster and the Eureka server"):
 *  1. one Eureka server and one Roster node; RSS empty; both filled with the same 10k records
 *     over REST (`POST /eureka/apps/APP`), which also warms the JVM; RSS at 10k;
 *  2. full reads of the unchanged registry (JSON, gzip and not; Roster's gRPC ListApplications
 *     too), alternating Eureka and Roster read by read; then a write and 8 reads right after
 *     it: how many reflect it;
 *  3. 100 writes/s for `deltaWriteMs` on both at once, a consumer polling `GET apps/delta`
 *     every second on each, and a Watch on Roster: write → visible (before step 4, whose
 *     writes would fill both delta windows);
 *  4. register and renew rows: `warmupMs` of each operation, then `rounds` rounds of
 *     `roundMs` per operation in turn, 64 callers over 2 forked load processes; the median
 *     round is the result, p50/p99 over every measured call. Unary calls are replayed by each
 *     load process's bench/replay child (Go) from requests encoded before the round (the
 *     Heartbeats stream rows use RosterClient); load-gen cores include the children's;
 *  5. (full run) fill to 100k, the reads again, RSS at 100k;
 *  6. three Eureka servers peered through defaultZone and three Roster nodes with --peers:
 *     register at A, poll B's `GET apps/APP/ID` every 5 ms: replication lag; (full run) an
 *     instance that stops renewing (lease 1 s / 5 s set by the client, servers' defaults
 *     otherwise) and a consumer polling `GET apps/APP` every second: when it is gone.
 */
import { Agent } from 'node:http';
import { loadavg } from 'node:os';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { RosterClient } from '../src/client/index.js';
import { describeMachine, writeReport } from './harness.js';
import { replayBinary } from './replay.js';
import { http, type Job, type TimedSpan, type UnaryOperation } from './compare-eureka-load.js';
import { eurekaBody, recordKey, type Lease } from './compare-eureka-records.js';
import { ensureEurekaJar, LoadPool, LOG_DIR, ROSTER_LIFTED_LIMITS, startEureka, startRoster, type PooledResult, type ServerChild } from './compare-eureka-procs.js';
import { freePorts } from '../test/support/ports.js';

const RESULTS = fileURLToPath(new URL('./results/compare-eureka.json', import.meta.url));
const MiB = 1024 * 1024;
/** Callers of the register and renew rows, spread over the load processes. */
const CALLERS = 64;
const LOAD_PROCESSES = 2;
/** The records every row works on (registered first; register rounds re-register them). */
const POOL = 10_000;
const PREFIX = 'fill';
const DELTA_WRITES_PER_SECOND = 100;
const DELTA_POLL_MS = 1_000;
/** After the writes stop, how long a consumer may take to see the last of them (Eureka: ≤ 30 s cache). */
const DELTA_GRACE_MS = 35_000;
const READS_AFTER_CHANGE = 8;
/** Eureka's read-only response cache refreshes every 30 s: how long a full read may lag a fill. */
const CACHE_LIMIT_MS = 70_000;
const LAG_POLL_MS = 5;
const LAG_LIMIT_MS = 10_000;
/** The crash scenario: the client's lease settings, the consumer's poll and the bound. */
const CRASH_LEASE: Lease = { renewalIntervalInSecs: 1, durationInSecs: 5 };
const CRASH_LIVE = 10;
const CRASH_POLL_MS = 1_000;
const CRASH_LIMIT_MS = 150_000;

interface Budget {
  readonly warmupMs: number;
  readonly rounds: number;
  readonly roundMs: number;
  readonly reads: number;
  readonly sizes: readonly number[];
  readonly deltaWriteMs: number;
  readonly lagSamples: number;
  readonly crash: boolean;
}

const BUDGETS: Readonly<Record<'full' | 'quick', Budget>> = {
  full: { warmupMs: 3_000, rounds: 5, roundMs: 1_500, reads: 7, sizes: [10_000, 100_000], deltaWriteMs: 10_000, lagSamples: 30, crash: true },
  quick: { warmupMs: 1_000, rounds: 2, roundMs: 700, reads: 3, sizes: [10_000], deltaWriteMs: 3_000, lagSamples: 10, crash: false },
};

type System = 'Eureka' | 'Roster';

/** One line of the table: a measure on one system (and variant). */
interface Row {
  readonly measure: string;
  readonly system: System;
  readonly variant: string;
  readonly value: number | string;
  readonly unit: string;
  readonly p50?: number;
  readonly p99?: number;
  /** The server's CPU: cores busy during load rows, ms per read for reads. */
  readonly serverCpu?: string;
  /** The load generators' cores during the row. */
  readonly clientCores?: number;
  /** Roster / Eureka, oriented so that > 1 means Roster is better. */
  ratio?: number;
  target?: string;
  met?: boolean;
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface CompareOptions {
  readonly quick: boolean;
  readonly out?: string;
}

export async function compareEureka(options: CompareOptions): Promise<void> {
  const budget = BUDGETS[options.quick ? 'quick' : 'full'];
  const startedAt = new Date();
  const loadBefore = loadavg();
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const rows: Row[] = [];
  ensureEurekaJar(log);
  replayBinary();
  log(`server logs: ${LOG_DIR}`);

  const pool = LoadPool.start(LOAD_PROCESSES);
  // A phase that fails (e.g. a JVM that does not start in time) is reported; the others' rows stay.
  const phase = async (name: string, run: () => Promise<void>): Promise<void> => {
    try {
      await run();
    } catch (err) {
      log(`${name} failed: ${err instanceof Error ? err.stack : String(err)}`);
      rows.push({ measure: `${name}: not measured`, system: 'Roster', variant: '', value: `failed: ${err instanceof Error ? err.message : String(err)}`, unit: '' });
      process.exitCode = 1;
    }
  };
  try {
    await phase('single-node phase', () => singleNodePhase(budget, pool, rows, log));
    await phase('three-node phase', () => clusterPhase(budget, rows, log));
  } finally {
    await pool.stop();
  }

  const report = {
    startedAt: startedAt.toISOString(),
    seconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
    mode: options.quick ? 'quick' : 'full',
    budget,
    roster: { command: 'node bin/roster.js serve', flags: ROSTER_LIFTED_LIMITS.join(' ') },
    eureka: { jar: 'bench/eureka-server (Spring Boot 3.5.7, spring-cloud-dependencies 2025.0.0)', jvm: 'java -jar, JVM defaults' },
    machine: describeMachine(loadBefore),
    rows,
  };
  console.log(table(rows));
  console.log(`\nload average (1 min) before ${report.machine.loadAverageBefore[0]}, after ${report.machine.loadAverageAfter[0]}; ${report.seconds} s`);
  writeReport(report, RESULTS, options.out);
}

async function singleNodePhase(budget: Budget, pool: LoadPool, rows: Row[], log: (line: string) => void): Promise<void> {
  const [eurekaPort, grpcPort, httpPort] = await freePorts(3);
  log('starting the Eureka server and a Roster node ...');
  const eureka = await startEureka('eureka', eurekaPort!);
  const roster = await startRoster('roster', grpcPort!, httpPort!);
  const servers: readonly ServerChild[] = [eureka, roster];
  try {
    const startup = (s: ServerChild): Row => ({ measure: 'start-up to first answer', system: sys(s), variant: '', value: s.startupMs, unit: 'ms' });
    rows.push(startup(eureka), compare(startup(roster), startup(eureka), 'lower', 'Roster leads today: keep ≥ 1'));
    const rss = (measure: string, target?: string): void => {
      const e: Row = { measure, system: 'Eureka', variant: 'VmRSS', value: eureka.rssBytes() / MiB, unit: 'MiB' };
      rows.push(e, compare({ measure, system: 'Roster', variant: 'VmRSS', value: roster.rssBytes() / MiB, unit: 'MiB' }, e, 'lower', target));
    };
    rss('RSS, empty registry');

    const runStart = Date.now() - 1;
    for (const server of servers) {
      log(`filling ${server.name} with ${POOL} records over REST ...`);
      const filled = await pool.run((w, n) => ({ kind: 'rest-register', base: server.base, prefix: PREFIX, span: share(0, POOL, w, n), concurrency: CALLERS / n }));
      if (filled.failed > 0) throw new Error(`filling ${server.name} failed: ${filled.firstError}`);
    }
    await settle();
    rss('RSS, 10k instances');

    // Reads and deltas first: the register rows write far more than a delta window holds.
    log(`full reads at ${POOL} ...`);
    await fullReads(POOL, await awaitCount(eureka, POOL, log), eureka, roster, budget, pool, rows);
    await readsAfterChange(eureka, roster, pool, rows);
    log('delta under 100 writes/s ...');
    await deltaRows(eureka, roster, budget, rows);

    /** A unary row's mode: its calls replayed by bench/replay, `CALLERS` split over the load processes. */
    const unary = (system: System, variant: string, server: ServerChild, operation: UnaryOperation, target: string): LoadMode => ({
      system,
      variant,
      server,
      job: (span, n) => ({ kind: 'replay', operation, target, prefix: PREFIX, span, concurrency: CALLERS / n, ...(operation === 'rest-renew' ? { lastDirtyTimestamp: runStart } : {}) }),
    });
    log('register rows ...');
    const registerModes: LoadMode[] = [
      unary('Eureka', 'REST POST', eureka, 'rest-register', eureka.base),
      unary('Roster', 'gRPC Register', roster, 'grpc-register', roster.grpcAddress!),
      unary('Roster', 'REST POST (Eureka face)', roster, 'rest-register', roster.base),
    ];
    const registers = await alternate('register/s, 64 callers', registerModes, budget, pool);
    rows.push(registers[0]!);
    rows.push(compare(registers[1]!, registers[0]!, 'higher', '≥ 1.5'));
    rows.push(compare(registers[2]!, registers[0]!, 'higher', '≥ 1'));

    log('renew rows ...');
    const renewModes: LoadMode[] = [
      unary('Eureka', 'REST PUT', eureka, 'rest-renew', eureka.base),
      unary('Roster', 'gRPC unary Heartbeat', roster, 'grpc-heartbeat', roster.grpcAddress!),
      {
        system: 'Roster',
        variant: 'Heartbeats stream, 1 per message',
        server: roster,
        job: (span) => ({ kind: 'grpc-stream', address: roster.grpcAddress!, prefix: PREFIX, span, concurrency: 2048, maxBatch: 1, window: 256 }),
      },
      {
        system: 'Roster',
        variant: 'Heartbeats stream, 100 per message',
        server: roster,
        job: (span) => ({ kind: 'grpc-stream', address: roster.grpcAddress!, prefix: PREFIX, span, concurrency: 10_000, maxBatch: 100, window: 8 }),
      },
      unary('Roster', 'REST PUT (Eureka face)', roster, 'rest-renew', roster.base),
    ];
    const renewals = await alternate('renewals/s (unary: 64 callers)', renewModes, budget, pool);
    rows.push(renewals[0]!);
    rows.push(compare(renewals[1]!, renewals[0]!, 'higher', '≥ 1.5'));
    rows.push(compare(renewals[2]!, renewals[0]!, 'higher', 'Roster leads today: keep ≥ 1'));
    rows.push(compare(renewals[3]!, renewals[0]!, 'higher', 'Roster leads today: keep ≥ 1'));
    rows.push(compare(renewals[4]!, renewals[0]!, 'higher', '≥ 1'));

    for (const size of budget.sizes.filter((n) => n > POOL)) {
      for (const server of servers) {
        log(`filling ${server.name} to ${size} records over REST ...`);
        const filled = await pool.run((w, n) => ({ kind: 'rest-register', base: server.base, prefix: PREFIX, span: share(POOL, size, w, n), concurrency: CALLERS / n }));
        if (filled.failed > 0) throw new Error(`filling ${server.name} failed: ${filled.firstError}`);
      }
      log(`full reads at ${size} ...`);
      const [served] = await Promise.all([awaitCount(eureka, size, log), awaitCount(roster, size, log)]);
      await fullReads(size, served, eureka, roster, budget, pool, rows);
      await readsAfterChange(eureka, roster, pool, rows, size);
      await settle();
      rss(`RSS, ${size / 1000}k instances`, size === 100_000 ? 'Roster leads today: keep ≥ 1' : undefined);
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

/** One operation of a register/renew row: a server and the job that loads it. */
interface LoadMode {
  readonly system: System;
  readonly variant: string;
  readonly server: ServerChild;
  job(span: TimedSpan, processes: number): Job;
}

/**
 * Warms each mode up, then runs `rounds` rounds of every mode in turn (so a neighbour's burst
 * on this shared machine hits all of them alike); the median round is each mode's result.
 */
async function alternate(measure: string, modes: readonly LoadMode[], budget: Budget, pool: LoadPool): Promise<Row[]> {
  /** One run of `mode`; replayed jobs are prepared before the server's CPU is read. */
  const run = async (mode: LoadMode, durationMs: number): Promise<{ result: PooledResult; serverCpu: number }> => {
    const jobOf = (w: number, n: number): Job => mode.job({ pool: POOL, durationMs, offset: Math.floor((w * POOL) / n) }, n);
    await pool.prepare(jobOf);
    const before = mode.server.cpuSeconds();
    const result = await pool.run(jobOf);
    return { result, serverCpu: mode.server.cpuSeconds() - before };
  };
  for (const mode of modes) await run(mode, budget.warmupMs);
  const measured = modes.map(() => ({ rounds: [] as PooledResult[], serverCpu: 0 }));
  for (let r = 0; r < budget.rounds; r++) {
    for (const [i, mode] of modes.entries()) {
      const { result, serverCpu } = await run(mode, budget.roundMs);
      measured[i]!.serverCpu += serverCpu;
      measured[i]!.rounds.push(result);
    }
  }
  return modes.map((mode, i) => {
    const { rounds, serverCpu } = measured[i]!;
    const seconds = rounds.reduce((s, r) => s + r.seconds, 0);
    const latencies = rounds.flatMap((r) => r.latencies);
    const failed = rounds.reduce((s, r) => s + r.failed, 0);
    const firstError = rounds.find((r) => r.firstError !== undefined)?.firstError;
    return {
      measure,
      system: mode.system,
      variant: mode.variant,
      value: median(rounds.map((r) => r.perSecond)),
      unit: '/s',
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      serverCpu: `${round2(serverCpu / seconds)} cores`,
      clientCores: round2(rounds.reduce((s, r) => s + r.clientCpuSeconds, 0) / seconds),
      details: { rounds: rounds.map((r) => Math.round(r.perSecond)), failed, ...(firstError === undefined ? {} : { firstError }) },
    };
  });
}

/**
 * Whole-registry reads of an unchanged registry, one at a time, Eureka and Roster in turn,
 * after one untimed read each (which fills a cache where the server has one).
 */
async function fullReads(size: number, eurekaServed: number, eureka: ServerChild, roster: ServerChild, budget: Budget, pool: LoadPool, rows: Row[]): Promise<void> {
  const label = `${size / 1000}k`;
  // Said in the row when Eureka's cached body had not caught up with the fill.
  const lag = eurekaServed === size ? '' : ` (cached body of ${eurekaServed} instances)`;
  for (const gzip of [true, false]) {
    const measure = `full read GET apps, ${label}, JSON${gzip ? ' + gzip' : ''}`;
    const reads = new Map<ServerChild, { ms: number[]; bytes: number[]; cpu: number; client: number; encoding: string }>();
    for (const server of [eureka, roster]) {
      await pool.run(() => ({ kind: 'rest-get', url: `${server.base}/apps`, gzip, times: 1 }), 1);
      reads.set(server, { ms: [], bytes: [], cpu: 0, client: 0, encoding: '' });
    }
    for (let r = 0; r < budget.reads; r++) {
      for (const server of [eureka, roster]) {
        const entry = reads.get(server)!;
        const before = server.cpuSeconds();
        const result = await pool.run(() => ({ kind: 'rest-get', url: `${server.base}/apps`, gzip, times: 1 }), 1);
        if (result.failed > 0) throw new Error(`${server.name}: ${result.firstError}`);
        entry.cpu += server.cpuSeconds() - before;
        entry.client += result.clientCpuSeconds;
        entry.ms.push(...result.latencies);
        entry.bytes.push(...(result.results[0]!.bytes ?? []));
        entry.encoding = result.results[0]!.encoding ?? '';
      }
    }
    const row = (server: ServerChild): Row => {
      const entry = reads.get(server)!;
      return {
        measure,
        system: sys(server),
        variant: `${(median(entry.bytes) / MiB).toFixed(2)} MiB ${entry.encoding}${server === eureka ? lag : ''}`,
        value: median(entry.ms),
        unit: 'ms',
        p50: median(entry.ms),
        p99: percentile(entry.ms, 99),
        serverCpu: `${round1((entry.cpu * 1000) / budget.reads)} ms/read`,
        clientCores: round2(entry.client / (entry.ms.reduce((s, m) => s + m, 0) / 1000)),
        details: { bytes: median(entry.bytes), encoding: entry.encoding, readsMs: entry.ms.map(round1), ...(server === eureka ? { instancesServed: eurekaServed } : {}) },
      };
    };
    const e = row(eureka);
    rows.push(e, compare(row(roster), e, 'lower', gzip ? '≥ 1 (no slower)' : undefined));
    if (gzip) {
      const eBytes = reads.get(eureka)!.bytes;
      const rBytes = reads.get(roster)!.bytes;
      const bytesRow: Row = { measure: `bytes of that read, ${label}, gzip`, system: 'Eureka', variant: '', value: median(eBytes) / MiB, unit: 'MiB' };
      rows.push(bytesRow, compare({ ...bytesRow, system: 'Roster', value: median(rBytes) / MiB }, bytesRow, 'lower', '≥ 0.83 (≤ 1.2x bytes)'));
    }
  }
  for (const gzip of [false, true]) {
    await pool.run(() => ({ kind: 'grpc-list', address: roster.grpcAddress!, gzip, times: 1 }), 1);
    const before = roster.cpuSeconds();
    const result = await pool.run(() => ({ kind: 'grpc-list', address: roster.grpcAddress!, gzip, times: budget.reads }), 1);
    const cpu = roster.cpuSeconds() - before;
    const encoding = result.results[0]!.encoding ?? 'identity';
    const served = !gzip || encoding === 'gzip';
    rows.push({
      measure: `full read gRPC ListApplications, ${label}${gzip ? ', gzip asked' : ''}`,
      system: 'Roster',
      variant: served ? `${(median(result.results[0]!.bytes ?? []) / MiB).toFixed(2)} MiB on the wire, grpc-encoding ${encoding}` : 'n/a: the server answered uncompressed',
      value: served ? median(result.latencies) : 'n/a',
      unit: 'ms',
      p50: median(result.latencies),
      p99: percentile(result.latencies, 99),
      serverCpu: `${round1((cpu * 1000) / budget.reads)} ms/read`,
      clientCores: round2(result.clientCpuSeconds / result.seconds),
      details: { encoding, readsMs: result.latencies.map(round1) },
    });
  }
}

/** A register with a marker, then reads right after it: how many of them carry the marker. */
async function readsAfterChange(eureka: ServerChild, roster: ServerChild, pool: LoadPool, rows: Row[], size = POOL): Promise<void> {
  const measure = `GET apps (gzip), ${size / 1000}k, right after a change: reads that reflect it`;
  const row = async (server: ServerChild): Promise<Row> => {
    const marker = `change-${server.name}-${Date.now()}`;
    const { app } = recordKey(1, PREFIX);
    const answer = await http(undefined, 'POST', `${server.base}/apps/${app}`, eurekaBody(1, PREFIX, Date.now(), marker));
    if (answer.status !== 204) throw new Error(`${server.name}: register answered ${answer.status}`);
    const result = await pool.run(() => ({ kind: 'rest-get', url: `${server.base}/apps`, gzip: true, times: READS_AFTER_CHANGE, marker }), 1);
    const hits = result.results[0]!.markerHits ?? 0;
    return {
      measure,
      system: sys(server),
      variant: hits === READS_AFTER_CHANGE ? 'fresh' : 'stale',
      value: `${hits} of ${READS_AFTER_CHANGE}`,
      unit: 'reads',
      p50: median(result.latencies),
      p99: percentile(result.latencies, 99),
      details: { hits, reads: READS_AFTER_CHANGE, readsMs: result.latencies.map(round1) },
    };
  };
  const e = await row(eureka);
  const r = await row(roster);
  r.target = 'fresh';
  r.met = r.details?.hits === READS_AFTER_CHANGE;
  rows.push(e, r);
}

/** What a delta consumer saw of the writes of {@link deltaPhase}. */
interface DeltaStats {
  readonly writes: number;
  readonly writesPerSecond: number;
  readonly deltaVisibleMs: number[];
  readonly watchVisibleMs: number[];
  readonly pollMs: number[];
  readonly pollBytes: number[];
  /** Polls answered 403 (the window reaches past the change log). */
  readonly refused: number;
  readonly serverCores: number;
}

async function deltaRows(eureka: ServerChild, roster: ServerChild, budget: Budget, rows: Row[]): Promise<void> {
  const [e, r] = await Promise.all([deltaPhase(eureka, budget.deltaWriteMs, false), deltaPhase(roster, budget.deltaWriteMs, true)]);
  const poll = (server: ServerChild, stats: DeltaStats): Row => ({
    measure: 'GET apps/delta (gzip) under 100 writes/s',
    system: sys(server),
    variant: `${Math.round(median(stats.pollBytes) / 1024)} KiB p50, ${Math.round(Math.max(...stats.pollBytes) / 1024)} KiB max`,
    value: median(stats.pollMs),
    unit: 'ms',
    p50: median(stats.pollMs),
    p99: percentile(stats.pollMs, 99),
    serverCpu: `${stats.serverCores} cores`,
    details: { polls: stats.pollMs.length, refused: stats.refused, writes: stats.writes, writesPerSecond: round1(stats.writesPerSecond) },
  });
  const visible = (server: ServerChild, variant: string, stats: DeltaStats, ms: number[]): Row => ({
    measure: 'write → visible to a consumer',
    system: sys(server),
    variant: `${variant}${ms.length < stats.writes ? ` (${stats.writes - ms.length} of ${stats.writes} never seen)` : ''}`,
    value: percentile(ms, 50),
    unit: 'ms',
    p50: percentile(ms, 50),
    p99: percentile(ms, 99),
    details: { seen: ms.length, writes: stats.writes },
  });
  const ePoll = poll(eureka, e);
  rows.push(ePoll, compare(poll(roster, r), ePoll, 'lower'));
  const eVisible = visible(eureka, 'delta poll every 1 s', e, e.deltaVisibleMs);
  rows.push(eVisible);
  rows.push(compare(visible(roster, 'delta poll every 1 s', r, r.deltaVisibleMs), eVisible, 'lower', 'Roster leads today: keep ≥ 1'));
  rows.push(compare(visible(roster, 'Watch stream', r, r.watchVisibleMs), eVisible, 'lower', 'Roster leads today: keep ≥ 1'));
}

/**
 * `DELTA_WRITES_PER_SECOND` registers (each changes a record: a new lastDirtyTimestamp) for
 * `writeMs`, while a consumer polls `GET apps/delta` every second (and, on Roster, a Watch
 * runs): for each write, the time from sending it to the first delta (event) carrying it.
 * Writes are paced by the clock (catching up on late ticks) and at most 200 are in flight.
 */
async function deltaPhase(server: ServerChild, writeMs: number, watch: boolean): Promise<DeltaStats> {
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const sent = new Map<string, { ldt: number; at: number }>();
  const deltaSeen = new Map<string, number>();
  const watchSeen = new Map<string, number>();
  const pollMs: number[] = [];
  const pollBytes: number[] = [];
  const note = (seen: Map<string, number>, id: string, ldt: number, at: number): void => {
    const write = sent.get(id);
    if (write !== undefined && ldt >= write.ldt && !seen.has(id)) seen.set(id, at - write.at);
  };
  const aborter = new AbortController();
  let watching: Promise<void> = Promise.resolve();
  let client: RosterClient | undefined;
  if (watch) {
    client = new RosterClient(server.grpcAddress!, { channelOptions: { 'grpc.per_rpc_retry_buffer_size': 0 } });
    const stream = client.watch({}, { signal: aborter.signal });
    let started: () => void = () => undefined;
    const first = new Promise<void>((resolve) => (started = resolve));
    watching = (async () => {
      try {
        for await (const message of stream) {
          started(); // the first message (progress) says the server is watching: writes may begin
          const at = performance.now();
          for (const change of message.changes) {
            if (change.instance !== undefined) note(watchSeen, change.instance.instanceId, change.instance.lastDirtyTimestamp, at);
          }
        }
      } catch (err) {
        if (!aborter.signal.aborted) throw err;
      }
    })();
    await Promise.race([first, watching, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  }
  const cpuBefore = server.cpuSeconds();
  const began = performance.now();
  let writes = 0;
  let refused = 0;
  let inFlight = 0;
  let writeError: unknown;
  const writer = setInterval(() => {
    const due = Math.min(Math.floor(((performance.now() - began) / 1000) * DELTA_WRITES_PER_SECOND), (writeMs / 1000) * DELTA_WRITES_PER_SECOND);
    while (writes < due && inFlight < 200) {
      const index = (writes++ * 7919) % POOL;
      const { app, instanceId } = recordKey(index, PREFIX);
      const ldt = Date.now();
      sent.set(instanceId, { ldt, at: performance.now() });
      inFlight++;
      http(agent, 'POST', `${server.base}/apps/${app}`, eurekaBody(index, PREFIX, ldt))
        .then(
          (answer) => {
            if (answer.status !== 204) writeError ??= new Error(`${server.name}: register answered ${answer.status}`);
          },
          (err: unknown) => (writeError ??= err),
        )
        .finally(() => inFlight--);
    }
  }, 10);
  const total = (writeMs / 1000) * DELTA_WRITES_PER_SECOND;
  const deadline = began + writeMs + DELTA_GRACE_MS;
  try {
    while (performance.now() < deadline) {
      const pollStart = performance.now();
      const answer = await http(agent, 'GET', `${server.base}/apps/delta`, undefined, { accept: 'application/json', 'accept-encoding': 'gzip' });
      const at = performance.now();
      if (answer.status === 403) {
        // The window holds more changes than the change log: a client fetches everything instead.
        refused++;
        await new Promise((resolve) => setTimeout(resolve, DELTA_POLL_MS));
        continue;
      }
      if (answer.status !== 200) throw new Error(`${server.name}: GET apps/delta answered ${answer.status}`);
      pollMs.push(at - pollStart);
      pollBytes.push(answer.body.length);
      const text = (answer.encoding === 'gzip' ? gunzipSync(answer.body) : answer.body).toString('utf8');
      const doc = JSON.parse(text) as { applications: { application: { instance: { instanceId: string; lastDirtyTimestamp: string }[] }[] } };
      for (const app of doc.applications.application) for (const instance of app.instance) note(deltaSeen, instance.instanceId, Number(instance.lastDirtyTimestamp), at);
      if (writeError !== undefined) throw writeError;
      const allSent = writes >= total && inFlight === 0;
      if (allSent && deltaSeen.size >= total && (!watch || watchSeen.size >= total)) break;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, DELTA_POLL_MS - (performance.now() - pollStart))));
    }
  } finally {
    clearInterval(writer);
    aborter.abort();
    await watching;
    await client?.close();
    agent.destroy();
  }
  const seconds = (performance.now() - began) / 1000;
  return {
    writes,
    writesPerSecond: writes / (writeMs / 1000),
    deltaVisibleMs: [...deltaSeen.values()],
    watchVisibleMs: [...watchSeen.values()],
    pollMs,
    pollBytes,
    refused,
    serverCores: round2((server.cpuSeconds() - cpuBefore) / seconds),
  };
}

/** Three Eureka servers and three Roster nodes: replication lag, and (full run) the crash. */
async function clusterPhase(budget: Budget, rows: Row[], log: (line: string) => void): Promise<void> {
  const ports = await freePorts(9);
  const eurekaPorts = ports.slice(0, 3);
  const grpcPorts = ports.slice(3, 6);
  const httpPorts = ports.slice(6, 9);
  const token = randomBytes(24).toString('hex');
  log('starting three peered Eureka servers and three Roster nodes ...');
  const servers: ServerChild[] = [];
  const track = async (pending: Promise<ServerChild>): Promise<ServerChild> => {
    const server = await pending;
    servers.push(server);
    return server;
  };
  try {
    const eurekas = await Promise.all(eurekaPorts.map((port, i) => track(startEureka(`eureka-${'abc'[i]}`, port, eurekaPorts))));
    const rosters = await Promise.all(grpcPorts.map((port, i) => track(startRoster(`roster-${'abc'[i]}`, port, httpPorts[i]!, grpcPorts, token))));
    const crash = budget.crash ? [startCrashFleet(eurekas), startCrashFleet(rosters)] : [];
    try {
      log(`replication lag, ${budget.lagSamples} samples each ...`);
      const lags = new Map<System, number[]>([
        ['Eureka', []],
        ['Roster', []],
      ]);
      for (let k = 0; k < budget.lagSamples; k++) {
        for (const cluster of [eurekas, rosters]) lags.get(sys(cluster[0]!))!.push(await replicationLag(cluster[0]!, cluster[1]!, k));
      }
      const lagRow = (system: System): Row => {
        const ms = lags.get(system)!;
        return {
          measure: '3 nodes: register at A → readable at B (GET apps/APP/ID)',
          system,
          variant: `${ms.length} samples`,
          value: percentile(ms, 99),
          unit: 'ms p99',
          p50: percentile(ms, 50),
          p99: percentile(ms, 99),
        };
      };
      const eLag = lagRow('Eureka');
      rows.push(eLag, compare(lagRow('Roster'), eLag, 'lower', 'Roster leads today: keep ≥ 1'));
      if (budget.crash) {
        log(`crash: waiting (at most ${CRASH_LIMIT_MS / 1000} s) for consumers to stop seeing a stopped instance ...`);
        const [eGone, rGone] = await Promise.all(crash.map((fleet) => fleet.then((f) => f.crashAndWait())));
        const crashRow = (system: System, ms: number | undefined): Row => ({
          measure: 'crashed instance gone for a consumer (lease 1 s/5 s, poll GET apps/APP every 1 s)',
          system,
          variant: system === 'Eureka' ? 'defaults: 60 s eviction timer, 30 s response cache' : 'defaults: eviction checked every 1 s, no cache',
          value: ms === undefined ? `> ${CRASH_LIMIT_MS / 1000} s` : ms,
          unit: 'ms',
        });
        const e = crashRow('Eureka', eGone);
        rows.push(e, compare(crashRow('Roster', rGone), e, 'lower', 'Roster leads today: keep ≥ 1'));
      } else {
        rows.push({ measure: 'crashed instance gone for a consumer', system: 'Roster', variant: 'skipped with --quick', value: 'n/a', unit: '' });
      }
    } finally {
      await Promise.all(
        crash.map((fleet) =>
          fleet.then(
            (f) => f.stop(),
            () => undefined,
          ),
        ),
      );
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

/** Registers instance `lag-k` at A and polls B for it: ms from sending the register to B's 200. */
async function replicationLag(a: ServerChild, b: ServerChild, k: number): Promise<number> {
  const { app, instanceId } = recordKey(k, 'lag');
  const began = performance.now();
  const answer = await http(undefined, 'POST', `${a.base}/apps/${app}`, eurekaBody(k, 'lag', Date.now()));
  if (answer.status !== 204) throw new Error(`${a.name}: register answered ${answer.status}`);
  const url = `${b.base}/apps/${app}/${encodeURIComponent(instanceId)}`;
  for (;;) {
    const read = await http(undefined, 'GET', url, undefined, { accept: 'application/json' });
    const at = performance.now();
    if (read.status === 200) return at - began;
    if (at - began > LAG_LIMIT_MS) throw new Error(`${instanceId} not readable at ${b.name} within ${LAG_LIMIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, LAG_POLL_MS));
  }
}

/**
 * `CRASH_LIVE` instances plus a victim registered at node A with a 1 s / 5 s lease, renewed
 * every second at A from the start (so Eureka's renewal counts see a live fleet and it does
 * not hold evictions for self-preservation). `crashAndWait` stops the victim's renewals and
 * polls node B's `GET apps/APP` every second until the victim is gone.
 */
async function startCrashFleet(cluster: readonly ServerChild[]): Promise<{ crashAndWait(): Promise<number | undefined>; stop(): Promise<void> }> {
  const [a, b] = [cluster[0]!, cluster[1]!];
  const indices = Array.from({ length: CRASH_LIVE + 1 }, (_, k) => k * 500); // one app: crash-app-0
  const victim = indices.at(-1)!;
  const { app } = recordKey(0, 'crash');
  const ldt = Date.now();
  for (const i of indices) {
    const answer = await http(undefined, 'POST', `${a.base}/apps/${app}`, eurekaBody(i, 'crash', ldt, '', CRASH_LEASE));
    if (answer.status !== 204) throw new Error(`${a.name}: register answered ${answer.status}`);
  }
  let victimAlive = true;
  let lastVictimRenewal = performance.now();
  let stopped = false;
  const renew = async (i: number): Promise<void> => {
    const { instanceId } = recordKey(i, 'crash');
    const answer = await http(undefined, 'PUT', `${a.base}/apps/${app}/${encodeURIComponent(instanceId)}?status=UP&lastDirtyTimestamp=${ldt}`);
    if (i === victim && answer.status === 200) lastVictimRenewal = performance.now();
  };
  const renewer = setInterval(() => {
    for (const i of indices) if (i !== victim || victimAlive) renew(i).catch(() => undefined);
  }, CRASH_LEASE.renewalIntervalInSecs * 1000);
  const stop = async (): Promise<void> => {
    stopped = true;
    clearInterval(renewer);
  };
  return {
    stop,
    async crashAndWait() {
      victimAlive = false;
      await new Promise((resolve) => setTimeout(resolve, 50)); // a renewal already sent lands
      const crashedAt = lastVictimRenewal;
      const { instanceId } = recordKey(victim, 'crash');
      while (!stopped && performance.now() - crashedAt < CRASH_LIMIT_MS) {
        const read = await http(undefined, 'GET', `${b.base}/apps/${app}`, undefined, { accept: 'application/json' });
        if (read.status === 404 || (read.status === 200 && !read.body.toString('utf8').includes(instanceId))) return performance.now() - crashedAt;
        await new Promise((resolve) => setTimeout(resolve, CRASH_POLL_MS));
      }
      return undefined;
    },
  };
}

/**
 * Reads the whole registry (gzip) until it holds `size` instances: at once on Roster; on
 * Eureka once its read-only response cache has refreshed (every 30 s), so that the reads that
 * follow are of an unchanged registry on both. Bounded by {@link CACHE_LIMIT_MS}: Eureka's
 * body may still lag then (seen at 100k on a loaded machine); the reads go on and the count
 * it served is returned, to be reported with them.
 */
async function awaitCount(server: ServerChild, size: number, log: (line: string) => void): Promise<number> {
  const began = performance.now();
  for (;;) {
    const answer = await http(undefined, 'GET', `${server.base}/apps`, undefined, { accept: 'application/json', 'accept-encoding': 'gzip' });
    const text = (answer.encoding === 'gzip' ? gunzipSync(answer.body) : answer.body).toString('utf8');
    const doc = JSON.parse(text) as { applications: { application: { instance: unknown[] }[] } };
    const count = doc.applications.application.reduce((s, a) => s + a.instance.length, 0);
    if (count === size) return count;
    if (performance.now() - began > CACHE_LIMIT_MS) {
      if (sys(server) === 'Roster') throw new Error(`${server.name} holds ${count} instances, expected ${size}`);
      log(`${server.name}'s GET apps still shows ${count} of ${size} instances after ${CACHE_LIMIT_MS / 1000} s: reading it as it is`);
      return count;
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

/** Worker `w` of `n`'s share of `[from, to)`. */
function share(from: number, to: number, w: number, n: number): { from: number; to: number } {
  const step = Math.ceil((to - from) / n);
  return { from: from + w * step, to: Math.min(to, from + (w + 1) * step) };
}

/** Lets a JVM's and Node's heaps settle after a burst before their RSS is read. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 2_000));
}

function sys(server: ServerChild): System {
  return server.grpcAddress === undefined ? 'Eureka' : 'Roster';
}

/**
 * Sets `row.ratio` against Eureka's row (> 1 = Roster better: Roster/Eureka for rates,
 * Eureka/Roster for times and sizes) and, with a target like "≥ 1.5", whether it is met.
 */
function compare(row: Row, eureka: Row, better: 'higher' | 'lower', target?: string): Row {
  if (typeof row.value === 'number' && typeof eureka.value === 'number' && row.value > 0 && eureka.value > 0) {
    row.ratio = better === 'higher' ? row.value / eureka.value : eureka.value / row.value;
  } else if (typeof row.value === 'number' && typeof eureka.value === 'string') {
    row.ratio = Number.POSITIVE_INFINITY; // Eureka never got there within the bound
  }
  if (target !== undefined) {
    row.target = target;
    const bound = /≥ ([\d.]+)/.exec(target);
    if (bound !== null && row.ratio !== undefined) row.met = row.ratio >= Number(bound[1]);
  }
  return row;
}

function median(values: readonly number[]): number {
  return percentile(values, 50);
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  if (p === 50) {
    const mid = sorted.length >> 1;
    return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  }
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

function format(value: number | string | undefined, unit = ''): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return Number.isNaN(value) ? 'n/a' : '∞';
  if (unit === '/s' || value >= 1000) return Math.round(value).toLocaleString('en-US');
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

/** A Markdown table, to paste into BENCHMARKS.md as it is. */
function table(rows: readonly Row[]): string {
  const header = ['measure', 'system', 'result', 'p50 / p99 ms', 'server CPU', 'load-gen cores', 'Roster/Eureka (> 1 = Roster better)', '#16 target', 'met'];
  const cells = rows.map((row) => [
    row.measure,
    `${row.system}${row.variant === '' ? '' : `, ${row.variant}`}`,
    `${format(row.value, row.unit)} ${row.unit}`.trim(),
    row.p50 === undefined ? '' : `${format(row.p50)} / ${format(row.p99)}`,
    row.serverCpu ?? '',
    row.clientCores === undefined ? '' : String(row.clientCores),
    row.ratio === undefined ? '' : `${format(row.ratio)}x`,
    row.target ?? '',
    row.met === undefined ? '' : row.met ? 'met' : 'not met',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]): string => `| ${c.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}
