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
  readonly durationMs: number;
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
      await server.populate(HEARTBEAT_POOL, 'hb');
    },
    scenarios: [
      {
        id: 'unary-baseline',
        title: 'a. empty unary RPC (grpc.health.v1 Check), 64 in flight',
        unit: 'calls/s',
        run: (ctx) => load(ctx, healthCheckLoop(ctx.server.address)),
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
        id: 'read-10k',
        title: 'e. full read (ListApplications, 4 MiB client limit), 10k instances',
        unit: 'ms',
        run: (ctx) => fullRead(ctx, 10_000),
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
        title: 'f. server RSS at 100k instances (after the reads, after GC)',
        unit: 'MB',
        target: () => ({ atMost: 300 }),
        run: async (ctx) => {
          const memory = await ctx.server.memory();
          return {
            value: memory.rss / MiB,
            details: { peakRssMB: round(memory.peakRss / MiB), heapUsedMB: round(memory.heapUsed / MiB) },
          };
        },
      },
    ],
  },
];

type Operation = (i: number) => Promise<boolean>;

/**
 * Warms up, then measures: `makeOperation('warmup' | 'measure')` gives the operation of each
 * phase, so scenarios that create things (Register) can keep the phases apart.
 */
async function load(
  ctx: Context,
  makeOperation: (phase: 'warmup' | 'measure') => Operation,
  concurrency = IN_FLIGHT,
): Promise<Measurement> {
  await runInFlight({ concurrency, durationMs: ctx.budget.warmupMs, operation: makeOperation('warmup') });
  const serverCpuBefore = ctx.server.cpuSeconds();
  const clientCpuBefore = process.cpuUsage();
  const result = await runInFlight({ concurrency, durationMs: ctx.budget.durationMs, operation: makeOperation('measure') });
  const clientCpu = process.cpuUsage(clientCpuBefore);
  const cpu = {
    server: (ctx.server.cpuSeconds() - serverCpuBefore) / result.seconds,
    client: (clientCpu.user + clientCpu.system) / 1e6 / result.seconds,
  };
  return { value: result.perSecond, details: loadDetails(result, concurrency, cpu) };
}

/** The counts behind a rate, and how busy each process was (1 = one core). */
function loadDetails(result: LoadResult, concurrency: number, cpu: { server: number; client: number }): Record<string, unknown> {
  return {
    ok: result.ok,
    failed: result.failed,
    seconds: round(result.seconds),
    concurrency,
    serverCores: Math.round(cpu.server * 100) / 100,
    clientCores: Math.round(cpu.client * 100) / 100,
    ...(result.firstError === undefined ? {} : { firstError: result.firstError }),
  };
}

/**
 * The baseline: grpc.health.v1.Health/Check on the same server (same port, interceptors and
 * connection settings), with an empty request and an undecoded answer, so it costs grpc-js
 * and nothing else. Returns the operation maker; the channel closes when the process ends.
 */
function healthCheckLoop(address: string): () => Operation {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  const empty = Buffer.alloc(0);
  const check: Operation = () =>
    new Promise((resolve) => {
      client.makeUnaryRequest(
        '/grpc.health.v1.Health/Check',
        (request: Buffer) => request,
        (response: Buffer) => response,
        empty,
        { deadline: Date.now() + 10_000 },
        (err) => resolve(err === null),
      );
    });
  return () => check;
}

/** Fills the server to `total` instances, then times whole-registry reads: the median. */
async function fullRead(ctx: Context, total: number): Promise<Measurement> {
  const size = await ctx.server.populate(total, 'size');
  if (size !== total) throw new Error(`expected ${total} instances on the server, found ${size}`);
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
