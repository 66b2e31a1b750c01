/**
 * Write-path scenarios (suite `writepath`): what issue #12 compares with etcd on writes, as
 * Roster alone sees it, each row with the server's CPU per operation so a change to the write
 * path shows even when the load generator is the limit:
 *
 *  - Register, 64 in flight, from 1 and from 2 load processes (bench/load-worker.ts);
 *  - renewals over raw Heartbeats streams with ONE heartbeat per message (no client
 *    batching), 1 and 4 streams, a window of messages outstanding per stream;
 *  - Watch latency: Register at a fixed open-loop rate (1,000 and 2,000 writes/s) and a Watch
 *    stream of every change in the same process; write sent → event received, p50/p99/max.
 */
import { fork } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { Instance } from '../src/gen/roster/v1/instance.js';
import { RegistryServiceClient, type HeartbeatsResponse, type WatchResponse } from '../src/gen/roster/v1/registry_service.js';
import { benchInstance, benchKey } from './instances.js';
import { median } from './harness.js';
import type { Context, Measurement } from './scenarios.js';
import type { WorkerReport, WorkerRequest } from './load-worker.js';

const CHANNEL_OPTIONS = { 'grpc.per_rpc_retry_buffer_size': 0 } as const;
/** Heartbeat messages outstanding per stream: keeps the stream full without unbounded buffering. */
const STREAM_WINDOW = 1_000;
/** Instances the Watch writes cycle over (each write changes one's metadata: a MODIFIED event). */
const WATCH_POOL = 1_000;
/** The pacing timer of the open-loop writer; each tick sends what is due since the start. */
const TICK_MS = 2;
/** Writes sent but unanswered beyond this are skipped and counted: the server cannot keep up. */
const MAX_OUTSTANDING_WRITES = 2_000;
const WATCH_GRACE_MS = 2_000;
const WORKER_SCRIPT = fileURLToPath(new URL('./load-worker.ts', import.meta.url));

function channel(ctx: Context, i: number): RegistryServiceClient {
  // A distinct option per channel, so grpc-js does not share one connection between them.
  return new RegistryServiceClient(ctx.server.address, grpc.credentials.createInsecure(), { ...CHANNEL_OPTIONS, 'bench.channel': i });
}

/** Server and this process's CPU over `run`, with the load average at its end. */
async function withCpu<T>(ctx: Context, run: () => Promise<T>): Promise<{ value: T; seconds: number; serverCores: number; clientCores: number; load1: number }> {
  const serverBefore = ctx.server.cpuSeconds();
  const clientBefore = process.cpuUsage();
  const start = performance.now();
  const value = await run();
  const seconds = (performance.now() - start) / 1000;
  const client = process.cpuUsage(clientBefore);
  return {
    value,
    seconds,
    serverCores: round2((ctx.server.cpuSeconds() - serverBefore) / seconds),
    clientCores: round2((client.user + client.system) / 1e6 / seconds),
    load1: round2(loadavg()[0]!),
  };
}

/**
 * Register (distinct instances, 64 in flight per process) from `processes` load processes,
 * so the server rather than one grpc-js client can be the limit. Reports the median round.
 */
export async function registerFromProcesses(ctx: Context, processes: number): Promise<Measurement> {
  const { budget } = ctx;
  const workers = Array.from({ length: processes }, () => fork(WORKER_SCRIPT, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const ask = (request: WorkerRequest): Promise<WorkerReport[]> =>
    Promise.all(
      workers.map(
        (worker, w) =>
          new Promise<WorkerReport>((resolve, reject) => {
            worker.once('message', (report: WorkerReport) => resolve(report));
            worker.once('exit', (code) => reject(new Error(`load worker exited with ${code}`)));
            worker.send({ ...request, prefix: `${request.prefix}-${w}` });
          }),
      ),
    );
  try {
    await ask({ type: 'register', address: ctx.server.address, prefix: 'regw', durationMs: budget.warmupMs, concurrency: 64 });
    const rounds: number[] = [];
    let serverCpu = 0;
    let clientCpu = 0;
    let ok = 0;
    let seconds = 0;
    for (let round = 0; round < budget.rounds; round++) {
      const before = ctx.server.cpuSeconds();
      const reports = await ask({ type: 'register', address: ctx.server.address, prefix: `regm${round}`, durationMs: budget.roundMs, concurrency: 64 });
      serverCpu += ctx.server.cpuSeconds() - before;
      const roundSeconds = Math.max(...reports.map((r) => r.seconds));
      const roundOk = reports.reduce((sum, r) => sum + r.ok, 0);
      rounds.push(roundOk / roundSeconds);
      ok += roundOk;
      seconds += roundSeconds;
      clientCpu += reports.reduce((sum, r) => sum + r.cpuSeconds, 0);
    }
    return {
      value: median(rounds),
      details: {
        processes,
        rounds: rounds.map(Math.round),
        serverCores: round2(serverCpu / seconds),
        clientCores: round2(clientCpu / seconds),
        serverMicrosPerOp: Math.round((serverCpu / ok) * 1e6),
        load1: round2(loadavg()[0]!),
      },
    };
  } finally {
    for (const worker of workers) worker.kill();
  }
}

/**
 * Renewals over `streams` raw Heartbeats streams, one heartbeat per message (what a client
 * without batching sends), each stream keeping {@link STREAM_WINDOW} messages outstanding.
 */
export async function renewalsPerMessage(ctx: Context, streams: number, poolSize: number, prefix: string): Promise<Measurement> {
  const clients = Array.from({ length: streams }, (_, i) => channel(ctx, i));
  try {
    const run = async (durationMs: number): Promise<{ ok: number; failed: number }> => {
      const stopAt = performance.now() + durationMs;
      const counts = await Promise.all(
        clients.map(
          (client, s) =>
            new Promise<{ ok: number; failed: number }>((resolve, reject) => {
              const call = client.heartbeats();
              let sent = 0;
              let ok = 0;
              let failed = 0;
              let outstanding = 0;
              let ended = false;
              const fill = (): void => {
                while (!ended && outstanding < STREAM_WINDOW) {
                  if (performance.now() >= stopAt) {
                    ended = true;
                    call.end();
                    return;
                  }
                  const { app, instanceId } = benchKey((s * 7919 + sent) % poolSize, prefix);
                  call.write({ batchId: ++sent, heartbeats: [{ app, instanceId, lastDirtyTimestamp: 0 }] });
                  outstanding++;
                }
              };
              call.on('data', (response: HeartbeatsResponse) => {
                outstanding--;
                for (const result of response.results) {
                  if (result.code === grpc.status.OK) ok++;
                  else failed++;
                }
                if (outstanding < STREAM_WINDOW / 2) fill();
              });
              call.on('end', () => resolve({ ok, failed }));
              call.on('error', reject);
              fill();
            }),
        ),
      );
      return { ok: counts.reduce((n, c) => n + c.ok, 0), failed: counts.reduce((n, c) => n + c.failed, 0) };
    };
    await run(ctx.budget.warmupMs);
    const rounds: number[] = [];
    const cpu = { server: 0, client: 0, seconds: 0, ok: 0, failed: 0 };
    for (let i = 0; i < ctx.budget.rounds; i++) {
      const round = await withCpu(ctx, () => run(ctx.budget.roundMs));
      rounds.push(round.value.ok / round.seconds);
      cpu.server += round.serverCores * round.seconds;
      cpu.client += round.clientCores * round.seconds;
      cpu.seconds += round.seconds;
      cpu.ok += round.value.ok;
      cpu.failed += round.value.failed;
    }
    return {
      value: median(rounds),
      details: {
        streams,
        window: STREAM_WINDOW,
        rounds: rounds.map(Math.round),
        failed: cpu.failed,
        serverCores: round2(cpu.server / cpu.seconds),
        clientCores: round2(cpu.client / cpu.seconds),
        serverMicrosPerOp: round2((cpu.server / cpu.ok) * 1e6),
        load1: round2(loadavg()[0]!),
      },
    };
  } finally {
    for (const client of clients) client.close();
  }
}

/**
 * Register at `rate` writes/s (open loop: sends follow the clock, not the answers) while one
 * Watch stream follows every change; each write's metadata carries its sequence number, so the
 * event is matched to its send time. Latency = event received − write sent, in ms.
 */
export async function watchLatency(ctx: Context, rate: number): Promise<Measurement> {
  const watcherChannel = channel(ctx, 100);
  const writer = channel(ctx, 101);
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  let measuring = false;
  const call = watcherChannel.watch({ app: '', vip: '', nodeId: '' });
  call.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      call.once('data', () => resolve());
      call.once('error', reject);
    });
    call.on('data', (response: WatchResponse) => {
      const now = performance.now();
      for (const change of response.changes) {
        const seq = Number(change.instance?.metadata.seq);
        const at = sentAt.get(seq);
        if (at === undefined) continue;
        sentAt.delete(seq);
        if (measuring) latencies.push(now - at);
      }
    });
    // The instances exist beforehand: every measured write is a MODIFIED of a live record.
    await Promise.all(Array.from({ length: WATCH_POOL }, (_, i) => register(writer, i, -1)));

    let seq = 0;
    let outstanding = 0;
    let skipped = 0;
    let failed = 0;
    const writeFor = (ms: number): Promise<number> =>
      new Promise((resolve) => {
        const start = performance.now();
        let sent = 0;
        const timer = setInterval(() => {
          const elapsed = performance.now() - start;
          const due = Math.floor((Math.min(elapsed, ms) / 1000) * rate);
          for (; sent < due; sent++) {
            if (outstanding >= MAX_OUTSTANDING_WRITES) {
              skipped++;
              continue;
            }
            const n = seq++;
            outstanding++;
            sentAt.set(n, performance.now());
            register(writer, n % WATCH_POOL, n).then(
              () => outstanding--,
              () => {
                outstanding--;
                failed++;
                sentAt.delete(n);
              },
            );
          }
          if (elapsed >= ms) {
            clearInterval(timer);
            resolve(sent);
          }
        }, TICK_MS);
      });
    await writeFor(ctx.budget.warmupMs);
    measuring = true;
    const measured = await withCpu(ctx, () => writeFor(ctx.budget.rounds * ctx.budget.roundMs));
    const expected = measured.value - skipped;
    const graceUntil = performance.now() + WATCH_GRACE_MS;
    while (latencies.length < expected - failed && performance.now() < graceUntil) await new Promise((r) => setTimeout(r, 20));
    measuring = false;
    const sorted = [...latencies].sort((a, b) => a - b);
    const quantile = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
    return {
      value: round2(quantile(0.99)),
      details: {
        rateAsked: rate,
        writesPerSecond: Math.round((measured.value - skipped - failed) / measured.seconds),
        events: latencies.length,
        missing: Math.max(0, expected - failed - latencies.length),
        skipped,
        failed,
        p50Ms: round2(quantile(0.5)),
        p90Ms: round2(quantile(0.9)),
        p99Ms: round2(quantile(0.99)),
        maxMs: round2(sorted.at(-1) ?? Number.NaN),
        serverCores: measured.serverCores,
        clientCores: measured.clientCores,
        load1: measured.load1,
      },
    };
  } finally {
    call.cancel();
    watcherChannel.close();
    writer.close();
  }
}

function register(client: RegistryServiceClient, i: number, seq: number): Promise<void> {
  const instance = benchInstance(i, 'wlat');
  return new Promise((resolve, reject) => {
    client.register({ instance: Instance.fromPartial({ ...instance, metadata: { ...instance.metadata, seq: String(seq) } }) }, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err) =>
      err ? reject(err) : resolve(),
    );
  });
}

const round2 = (n: number): number => Math.round(n * 100) / 100;
