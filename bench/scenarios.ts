import * as grpc from '@grpc/grpc-js';
import { HeartbeatStream, RosterClient } from '../src/client/index.js';
import { runInFlight, median, timeEach, type LoadResult, type ServerProcess } from './harness.js';
import { benchInstance } from './instances.js';

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
  readonly unit: 'calls/s' | 'registers/s' | 'heartbeats/s' | 'renewals/s' | 'ms' | 'MB';
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

/** Calls in flight for the unary scenarios: enough to keep one grpc-js connection busy. */
const IN_FLIGHT = 64;
/** Heartbeats outstanding on the stream: more than HeartbeatStream's window (8 × 500) holds. */
const STREAM_OUTSTANDING = 10_000;
/** Instances the heartbeat scenarios renew. */
const HEARTBEAT_POOL = 10_000;
const MiB = 1024 * 1024;

/**
 * The write path is measured, not the write rate limiter: its default (50k writes/s, burst
 * 20k) is a per-deployment setting and would cap the stream scenario at the limit itself.
 */
const UNLIMITED_WRITES = { writesPerSecond: 10_000_000, writeBurst: 10_000_000 };

/** Channel options of every benchmark client (TOOLCHAIN.md: grpc-js retry buffer). */
export const CHANNEL_OPTIONS = { 'grpc.per_rpc_retry_buffer_size': 0 } as const;

export const SUITES: readonly Suite[] = [
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
        run: async (ctx) => {
          const client = new grpc.Client(ctx.server.address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
          try {
            return await load(ctx, () => () => healthCheck(client));
          } finally {
            client.close();
          }
        },
      },
      {
        id: 'register',
        title: 'b. Register, 64 in flight, distinct instances',
        unit: 'registers/s',
        run: (ctx) =>
          load(ctx, (phase) => (i) => ctx.client.register(benchInstance(i, `reg-${phase}`)).then(() => true)),
      },
      {
        id: 'heartbeat-unary',
        title: 'c. unary Heartbeat, 64 in flight',
        unit: 'heartbeats/s',
        target: (results) => ({ atLeast: 0.7 * value(results, 'unary-baseline'), note: '0.7 × baseline (a)' }),
        run: (ctx) =>
          load(ctx, () => (i) => {
            const { app, instanceId } = benchInstance(i % HEARTBEAT_POOL, 'hb');
            return ctx.client.heartbeat(app!, instanceId!).then(() => true);
          }),
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
                const { app, instanceId } = benchInstance(i % HEARTBEAT_POOL, 'hb');
                return stream.heartbeat(app!, instanceId!).then((result) => result.code === grpc.status.OK);
              },
              STREAM_OUTSTANDING,
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
        unit: 'MB',
        run: serverMemory,
      },
      {
        id: 'read-10k',
        title: 'e. full read (ListApplications, 4 MiB client limit), 10k instances',
        unit: 'ms',
        run: (ctx) => fullRead(ctx, 10_000),
      },
      {
        id: 'rss-100k-idle',
        title: 'f. server RSS, 100k instances, before any read (after GC)',
        unit: 'MB',
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
        run: (ctx) => fullRead(ctx, 100_000),
      },
      {
        id: 'rss-100k',
        title: 'f. server RSS, 100k instances, after serving the reads (after GC)',
        unit: 'MB',
        target: () => ({ atMost: 300 }),
        run: serverMemory,
      },
    ],
  },
];

type Operation = (i: number) => Promise<boolean>;

/**
 * Warms up, then measures `budget.rounds` rounds of `budget.roundMs` and reports the median
 * round: one round slowed by a neighbour on this shared 2-core machine does not move it.
 * `makeOperation('warmup' | 'measure')` gives each phase's operation, so scenarios that create
 * things (Register) can keep the phases apart.
 */
async function load(
  ctx: Context,
  makeOperation: (phase: 'warmup' | 'measure') => Operation,
  concurrency = IN_FLIGHT,
): Promise<Measurement> {
  const { budget, server } = ctx;
  await runInFlight({ concurrency, durationMs: budget.warmupMs, operation: makeOperation('warmup') });
  const operation = makeOperation('measure');
  const rounds: LoadResult[] = [];
  const serverCpuBefore = server.cpuSeconds();
  const clientCpuBefore = process.cpuUsage();
  for (let i = 0; i < budget.rounds; i++) {
    rounds.push(await runInFlight({ concurrency, durationMs: budget.roundMs, operation }));
  }
  const clientCpu = process.cpuUsage(clientCpuBefore);
  const seconds = rounds.reduce((sum, r) => sum + r.seconds, 0);
  const firstError = rounds.find((r) => r.firstError !== undefined)?.firstError;
  return {
    value: median(rounds.map((r) => r.perSecond)),
    details: {
      rounds: rounds.map((r) => Math.round(r.perSecond)),
      ok: rounds.reduce((sum, r) => sum + r.ok, 0),
      failed: rounds.reduce((sum, r) => sum + r.failed, 0),
      concurrency,
      // How busy each process was over the rounds (1 = one core): which side is the limit.
      serverCores: round2((server.cpuSeconds() - serverCpuBefore) / seconds),
      clientCores: round2((clientCpu.user + clientCpu.system) / 1e6 / seconds),
      ...(firstError === undefined ? {} : { firstError }),
    },
  };
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
      peakRssMB: round(memory.peakRss / MiB),
      heapUsedMB: round(memory.node.heapUsed / MiB),
      heapTotalMB: round(memory.node.heapTotal / MiB),
      externalMB: round(memory.node.external / MiB),
      arrayBuffersMB: round(memory.node.arrayBuffers / MiB),
    },
  };
}

/** Fills the server to `total` instances, then times whole-registry reads: the median. */
async function fullRead(ctx: Context, total: number): Promise<Measurement> {
  await fill(ctx, total);
  const read = async (): Promise<void> => {
    const snapshot = await ctx.client.listApplications();
    if (snapshot.instances.length !== total) throw new Error(`read ${snapshot.instances.length} of ${total} instances`);
  };
  await read(); // warm-up
  const durations = await timeEach(ctx.budget.reads, read);
  return {
    value: median(durations),
    details: { reads: durations.length, minMs: round(Math.min(...durations)), maxMs: round(Math.max(...durations)) },
  };
}

function value(results: Results, id: string): number {
  const measurement = results.get(id);
  if (measurement === undefined) throw new Error(`scenario ${id} has not run`);
  return measurement.value;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
