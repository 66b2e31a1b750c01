/**
 * The benchmark scenarios, as data: suites of scenarios, each suite against its own server
 * process (bench/server.ts). To add a scenario, append an entry to a suite (or a new suite
 * with its own `serverFlags`); `load()` runs "N in flight for T seconds" and `timeEach()`
 * times repeated operations. A suite that needs its own processes (the three-node replication
 * suite, bench/replication.ts) is a {@link ClusterSuite}: one run, several rows.
 */
import * as grpc from '@grpc/grpc-js';
import { HeartbeatStream, type RosterClient } from '../src/client/index.js';
import { runInFlight, median, type LoadResult, type ServerProcess } from './harness.js';
import { benchInstance, benchKey } from './instances.js';
import { dashboardFilter, dashboardFirstPage } from './dashboard.js';
import { REPLICATION_SUITE } from './replication.js';
import { DEPLOYMENT_SUITE } from './deployment.js';
import { manyWatchers, pausedWatcher } from './watchers.js';
import { timedFullReads, type FullReadOptions } from './full-reads.js';
import { XDS_SUITE } from './xds.js';
import { tlsSuite } from './tls.js';
import { registerFromProcesses, renewalsPerMessage, watchLatency } from './writepath.js';

/** What one scenario measured: the headline number and whatever explains it. */
export interface Measurement {
  readonly value: number;
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Measurements so far, by scenario id: a target may depend on an earlier result. */
export type Results = ReadonlyMap<string, Measurement>;

/** A bound the result is compared with (reported, never asserted). */
export interface Target {
  readonly atLeast?: number;
  readonly atMost?: number;
  /** How the bound was derived, e.g. "0.7 × baseline". */
  readonly note?: string;
}

/** How long load scenarios run and how often reads repeat (`--quick` shrinks them). */
export interface Budget {
  readonly warmupMs: number;
  /** Load scenarios run this many rounds of `roundMs` and report the median round. */
  readonly rounds: number;
  readonly roundMs: number;
  /** Timed whole-registry reads per size (after one untimed read). */
  readonly reads: number;
  /** Replication suite: load before the measured window, the window, and the A↔C partition. */
  readonly replicationWarmupMs: number;
  readonly replicationWindowMs: number;
  readonly partitionMs: number;
}

/** What a scenario runs against: the suite's server, a client of it, and the results so far. */
export interface Context {
  readonly server: ServerProcess;
  readonly client: RosterClient;
  readonly budget: Budget;
  readonly results: Results;
}

export interface Scenario {
  /** Stable key in the JSON results. */
  readonly id: string;
  /** The row's label in the table. */
  readonly title: string;
  readonly unit: 'calls/s' | 'registers/s' | 'heartbeats/s' | 'renewals/s' | 'writes/s' | 'ms' | 'MiB' | 'cores' | 'tasks';
  readonly target?: (results: Results) => Target;
  run(ctx: Context): Promise<Measurement>;
}

/**
 * Scenarios sharing one server process, run in order. `serverFlags` are `roster serve`
 * settings; `setup` prepares the server before the first scenario.
 */
export interface Suite {
  readonly name: string;
  readonly serverFlags: Readonly<Record<string, unknown>>;
  readonly setup?: (server: ServerProcess) => Promise<void>;
  readonly scenarios: readonly Scenario[];
}

/**
 * A suite that starts its own processes instead of one suite server (e.g. a three-node
 * cluster), runs once, and measures all its rows in that run: `run` answers a measurement
 * per scenario id. Selecting any of its scenarios (`--only`) runs the whole suite once.
 */
export interface ClusterSuite {
  readonly name: string;
  readonly scenarios: readonly Omit<Scenario, 'run'>[];
  run(options: { readonly budget: Budget; readonly serverFlags: Readonly<Record<string, unknown>> }): Promise<ReadonlyMap<string, Measurement>>;
}

export function isClusterSuite(suite: Suite | ClusterSuite): suite is ClusterSuite {
  return 'run' in suite;
}

/** Calls in flight for the unary scenarios: enough to keep one grpc-js connection busy. */
const IN_FLIGHT = 64;
/** Heartbeats outstanding on the stream: more than HeartbeatStream's window (8 × 500) holds. */
const STREAM_OUTSTANDING = 10_000;
/** Instances the heartbeat scenarios renew. */
const HEARTBEAT_POOL = 10_000;
const MiB = 1024 * 1024;

/**
 * The Eureka server's cached full read measured on this machine (issue #16: Spring Cloud
 * Netflix 4.3, same records, `Accept-Encoding: gzip`): p50 ms and bytes on the wire.
 */
const EUREKA_CACHED_GZIP_READ_MS = { '10k': 2.3, '100k': 26 } as const;
const EUREKA_GZIP_BYTES = { '10k': 1.15e6, '100k': 11.7e6 } as const;

/**
 * The write path is measured, not the write rate limiter: its default (50k writes/s, burst
 * 20k) is a per-deployment setting and would cap the stream scenario at the limit itself.
 */
const UNLIMITED_WRITES = { writesPerSecond: 10_000_000, writeBurst: 10_000_000 };

/** Channel options of every benchmark client: no per-call retry buffer (grpc-js copies it per streamed message). */
export const CHANNEL_OPTIONS = { 'grpc.per_rpc_retry_buffer_size': 0 } as const;

export const SUITES: readonly (Suite | ClusterSuite)[] = [
  {
    name: 'throughput',
    serverFlags: UNLIMITED_WRITES,
    setup: async (server) => {
      await server.populate(0, HEARTBEAT_POOL, 'hb');
    },
    scenarios: [
      {
        id: 'unary-baseline',
        title: 'a. empty unary RPC (grpc.health.v1 Check), 64 in flight',
        unit: 'calls/s',
        run: (ctx) => withHealthClient(ctx, (health) => load(ctx, () => () => healthCheck(health))),
      },
      {
        id: 'register',
        title: 'b. Register, 64 in flight, distinct instances',
        unit: 'registers/s',
        run: (ctx) => load(ctx, (phase) => (i) => ctx.client.register(benchInstance(i, `reg-${phase}`)).then(() => true)),
      },
      {
        id: 'heartbeat-unary',
        title: 'c. unary Heartbeat, 64 in flight',
        unit: 'heartbeats/s',
        // Load from neighbours on this shared machine comes and goes within seconds, so the
        // baseline is measured again in rounds alternating with these, and compared with that.
        target: (results) => ({
          atLeast: 0.7 * detail(results, 'heartbeat-unary', 'alongsidePerSecond'),
          note: '0.7 × baseline (a) in alternating rounds',
        }),
        run: (ctx) =>
          withHealthClient(ctx, (health) =>
            load(
              ctx,
              () => (i) => {
                const { app, instanceId } = benchKey(i % HEARTBEAT_POOL, 'hb');
                return ctx.client.heartbeat(app, instanceId).then(() => true);
              },
              { alongside: () => healthCheck(health) },
            ),
          ),
      },
      {
        id: 'heartbeat-stream',
        title: 'd. renewals over one Heartbeats stream (HeartbeatStream)',
        unit: 'renewals/s',
        target: () => ({ atLeast: 50_000 }),
        run: async (ctx) => {
          const stream = new HeartbeatStream(ctx.client);
          try {
            return await load(
              ctx,
              () => (i) => {
                const { app, instanceId } = benchKey(i % HEARTBEAT_POOL, 'hb');
                return stream.heartbeat(app, instanceId).then((result) => result.code === grpc.status.OK);
              },
              { concurrency: STREAM_OUTSTANDING },
            );
          } finally {
            await stream.close();
          }
        },
      },
    ],
  },
  {
    name: 'size',
    serverFlags: {},
    scenarios: [
      {
        id: 'rss-empty',
        title: 'server RSS, empty registry (after GC), for reference',
        unit: 'MiB',
        run: serverMemory,
      },
      {
        id: 'read-10k',
        title: 'e. full read (ListApplications, 4 MiB client limit), 10k instances',
        unit: 'ms',
        run: readAt(10_000),
      },
      {
        id: 'read-10k-gzip',
        title: 'e. full read, client asks gzip, 10k instances, unchanged registry (RosterClient, decoded)',
        unit: 'ms',
        run: readAt(10_000, { compression: 'gzip' }),
      },
      {
        id: 'read-10k-gzip-raw',
        title: 'e. the same read, bytes received but neither inflated nor decoded (as a REST load generator reads)',
        unit: 'ms',
        target: () => ({ atMost: EUREKA_CACHED_GZIP_READ_MS['10k'], note: "Eureka's cached gzip read (#16)" }),
        run: readAt(10_000, { compression: 'gzip', decoder: 'wire' }),
      },
      {
        id: 'read-10k-gzip-mib',
        title: 'e. bytes of that gzip read, 10k instances',
        unit: 'MiB',
        target: () => ({ atMost: (1.2 * EUREKA_GZIP_BYTES['10k']) / MiB, note: "1.2 × Eureka's gzip bytes (#16)" }),
        run: async (ctx) => ({ value: detail(ctx.results, 'read-10k-gzip', 'mib') }),
      },
      {
        id: 'rss-100k-idle',
        title: 'f. server RSS, 100k instances, before any read (after GC)',
        unit: 'MiB',
        target: () => ({ atMost: 300 }),
        run: async (ctx) => {
          await fill(ctx, 100_000);
          return serverMemory(ctx);
        },
      },
      {
        id: 'read-100k',
        title: 'e. full read (ListApplications, 4 MiB client limit), 100k instances',
        unit: 'ms',
        target: () => ({ atMost: 300 }),
        run: readAt(100_000),
      },
      {
        id: 'read-100k-gzip',
        title: 'e. full read, client asks gzip, 100k instances, unchanged registry (RosterClient, decoded)',
        unit: 'ms',
        run: readAt(100_000, { compression: 'gzip' }),
      },
      {
        id: 'read-100k-gzip-raw',
        title: 'e. the same read, bytes received but neither inflated nor decoded (as a REST load generator reads)',
        unit: 'ms',
        target: () => ({ atMost: EUREKA_CACHED_GZIP_READ_MS['100k'], note: "Eureka's cached gzip read (#16)" }),
        run: readAt(100_000, { compression: 'gzip', decoder: 'wire' }),
      },
      {
        id: 'read-100k-gzip-mib',
        title: 'e. bytes of that gzip read, 100k instances',
        unit: 'MiB',
        target: () => ({ atMost: (1.2 * EUREKA_GZIP_BYTES['100k']) / MiB, note: "1.2 × Eureka's gzip bytes (#16)" }),
        run: async (ctx) => ({ value: detail(ctx.results, 'read-100k-gzip', 'mib') }),
      },
      {
        id: 'read-100k-after-change',
        title: 'e. first full read after a change (nothing cached), 100k instances',
        unit: 'ms',
        run: readAt(100_000, { afterChange: true }),
      },
      {
        id: 'read-100k-gzip-after-change',
        title: 'e. first full read after a change, client asks gzip, 100k instances',
        unit: 'ms',
        run: readAt(100_000, { compression: 'gzip', afterChange: true }),
      },
      {
        id: 'read-100k-proto-loader',
        title: 'e. full read decoded by a @grpc/proto-loader client, 100k instances',
        unit: 'ms',
        run: readAt(100_000, { decoder: 'proto-loader' }),
      },
      {
        id: 'rss-100k',
        title: 'f. server RSS, 100k instances, after serving the reads (after GC)',
        unit: 'MiB',
        target: () => ({ atMost: 300 }),
        run: serverMemory,
      },
    ],
  },
  {
    name: 'dashboard',
    serverFlags: {},
    setup: async (server) => {
      await server.populate(0, 100_000, 'dash');
    },
    scenarios: [
      {
        id: 'dashboard-first-page-100k',
        title: 'g. dashboard in chromium: navigation to the first page of applications, 100k instances',
        unit: 'ms',
        target: () => ({ atMost: 1000 }),
        run: dashboardFirstPage,
      },
      {
        id: 'dashboard-filter-100k',
        title: 'g. dashboard in chromium: search to narrowed list (120 ms debounce included), 100k instances',
        unit: 'ms',
        target: () => ({ atMost: 500 }),
        run: dashboardFilter,
      },
    ],
  },
  {
    name: 'watchers',
    serverFlags: UNLIMITED_WRITES,
    scenarios: [
      {
        id: 'rss-paused-watcher',
        title: 'h. server RSS growth with one Watch stream that stopped reading, 1,000 writes/s',
        unit: 'MiB',
        run: pausedWatcher,
      },
      {
        id: 'rss-5000-watchers',
        title: 'h. server RSS with 5,000 Watch streams reading, 1,000 writes/s',
        unit: 'MiB',
        run: (ctx) => manyWatchers(ctx, 5_000),
      },
    ],
  },
  {
    name: 'writepath',
    serverFlags: UNLIMITED_WRITES,
    setup: async (server) => {
      await server.populate(0, HEARTBEAT_POOL, 'wphb');
    },
    scenarios: [
      {
        id: 'wp-register-1proc',
        title: 'w. Register, 64 in flight, 1 load process',
        unit: 'registers/s',
        run: (ctx) => registerFromProcesses(ctx, 1),
      },
      {
        id: 'wp-register-2proc',
        title: 'w. Register, 64 in flight per process, 2 load processes',
        unit: 'registers/s',
        run: (ctx) => registerFromProcesses(ctx, 2),
      },
      {
        id: 'wp-renewals-1stream',
        title: 'w. renewals, one per message, 1 Heartbeats stream',
        unit: 'renewals/s',
        run: (ctx) => renewalsPerMessage(ctx, 1, HEARTBEAT_POOL, 'wphb'),
      },
      {
        id: 'wp-renewals-4streams',
        title: 'w. renewals, one per message, 4 Heartbeats streams',
        unit: 'renewals/s',
        run: (ctx) => renewalsPerMessage(ctx, 4, HEARTBEAT_POOL, 'wphb'),
      },
      {
        id: 'wp-watch-1000',
        title: 'w. Register → Watch event at 1,000 writes/s (open loop), p99',
        unit: 'ms',
        run: (ctx) => watchLatency(ctx, 1_000),
      },
      {
        id: 'wp-watch-2000',
        title: 'w. Register → Watch event at 2,000 writes/s (open loop), p99',
        unit: 'ms',
        run: (ctx) => watchLatency(ctx, 2_000),
      },
    ],
  },
  REPLICATION_SUITE,
  DEPLOYMENT_SUITE,
  XDS_SUITE,
  tlsSuite({ throughput: () => SUITES[0] as Suite, channelOptions: CHANNEL_OPTIONS, heartbeatPool: HEARTBEAT_POOL }),
];

type Operation = (i: number) => Promise<boolean>;

/**
 * Warms up, then measures `budget.rounds` rounds of `budget.roundMs` and reports the median
 * round: one round slowed by a neighbour on this shared 2-core machine does not move it.
 * `makeOperation('warmup' | 'measure')` gives each phase's operation, so scenarios that create
 * things (Register) can keep the phases apart. With `alongside`, a round of that operation
 * precedes each measured round; its median is reported as `alongsidePerSecond`.
 */
async function load(ctx: Context, makeOperation: (phase: 'warmup' | 'measure') => Operation, options: { readonly concurrency?: number; readonly alongside?: Operation } = {}): Promise<Measurement> {
  const { budget, server } = ctx;
  const { concurrency = IN_FLIGHT, alongside } = options;
  const run = (operation: Operation, durationMs = budget.roundMs): Promise<LoadResult> => runInFlight({ concurrency, durationMs, operation });

  await run(makeOperation('warmup'), budget.warmupMs);
  if (alongside !== undefined) await run(alongside, budget.warmupMs);
  const operation = makeOperation('measure');
  const rounds: LoadResult[] = [];
  const alongsideRounds: LoadResult[] = [];
  let serverCpu = 0;
  let clientCpu = 0;
  for (let i = 0; i < budget.rounds; i++) {
    if (alongside !== undefined) alongsideRounds.push(await run(alongside));
    const serverBefore = server.cpuSeconds();
    const clientBefore = process.cpuUsage();
    rounds.push(await run(operation));
    const client = process.cpuUsage(clientBefore);
    serverCpu += server.cpuSeconds() - serverBefore;
    clientCpu += (client.user + client.system) / 1e6;
  }
  const seconds = rounds.reduce((sum, r) => sum + r.seconds, 0);
  const firstError = rounds.find((r) => r.firstError !== undefined)?.firstError;
  const perSecond = (results: readonly LoadResult[]): number[] => results.map((r) => Math.round(r.perSecond));
  return {
    value: median(rounds.map((r) => r.perSecond)),
    details: {
      rounds: perSecond(rounds),
      ok: rounds.reduce((sum, r) => sum + r.ok, 0),
      failed: rounds.reduce((sum, r) => sum + r.failed, 0),
      concurrency,
      // How busy each process was in the measured rounds (1 = one core): which side is the limit.
      serverCores: round2(serverCpu / seconds),
      clientCores: round2(clientCpu / seconds),
      ...(alongside === undefined ? {} : { alongsideRounds: perSecond(alongsideRounds), alongsidePerSecond: median(alongsideRounds.map((r) => r.perSecond)) }),
      ...(firstError === undefined ? {} : { firstError }),
    },
  };
}

/** Runs `use` with a plain grpc-js channel to the suite's server, closed afterwards. */
async function withHealthClient<T>(ctx: Context, use: (client: grpc.Client) => Promise<T>): Promise<T> {
  const client = new grpc.Client(ctx.server.address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * The baseline: grpc.health.v1.Health/Check on the same server (same port, interceptors and
 * connection settings), with an empty request and an undecoded answer, so it costs grpc-js
 * and nothing else. The deadline matches what RosterClient sets on every call.
 */
function healthCheck(client: grpc.Client): Promise<boolean> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      (request: Buffer) => request,
      (response: Buffer) => response,
      EMPTY,
      { deadline: Date.now() + 10_000 },
      (err) => resolve(err === null),
    );
  });
}

/** Grows the server to `total` instances (the suite's server holds only these). */
async function fill(ctx: Context, total: number): Promise<void> {
  const before = await ctx.server.size();
  const size = before < total ? await ctx.server.populate(before, total, 'size') : before;
  if (size !== total) throw new Error(`expected ${total} instances on the server, found ${size}`);
}

/** The server's resident set after a full GC; its peak so far and its JS heap as details. */
async function serverMemory(ctx: Context): Promise<Measurement> {
  const memory = await ctx.server.memory();
  return {
    value: memory.rss / MiB,
    details: {
      peakRssMiB: round(memory.peakRss / MiB),
      heapUsedMiB: round(memory.node.heapUsed / MiB),
      heapTotalMiB: round(memory.node.heapTotal / MiB),
      externalMiB: round(memory.node.external / MiB),
      arrayBuffersMiB: round(memory.node.arrayBuffers / MiB),
    },
  };
}

/** A full-read scenario at `total` instances (the suite's server grown to them first). */
function readAt(total: number, options?: FullReadOptions): (ctx: Context) => Promise<Measurement> {
  return async (ctx) => {
    await fill(ctx, total);
    return timedFullReads(ctx, total, options);
  };
}

/** A numeric detail of a measurement so far (e.g. a baseline measured alongside). */
function detail(results: Results, id: string, key: string): number {
  const found = results.get(id)?.details?.[key];
  if (typeof found !== 'number') throw new Error(`scenario ${id} has no numeric detail ${key}`);
  return found;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
