/**
 * `npm run bench -- --scale N`: one node holding N instances. A real node process (bin/roster.js
 * serve, as deployed, with bench/scale-probe.js preloaded to read its event-loop delay and GC
 * pauses) is filled through Register over gRPC, its instances are renewed over a Heartbeats
 * stream in batches, paced so every instance renews once per renewal interval, and then a
 * share of them stops renewing at once. Reported per phase (fill, full read, steady renewals,
 * expiry): rates, RSS and heap, event-loop delay p50/p99/max, GC pauses by kind, server and
 * bench CPU, and whether self-preservation engaged. Targets are reported, never enforced.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { RosterClient } from '../src/client/index.js';
import { flagOf } from '../src/cli/config.js';
import type { HeartbeatsRequest, HeartbeatsResponse } from '../src/gen/roster/v1/registry_service.js';
import { ListApplicationsRequest, ListApplicationsResponse } from '../src/gen/roster/v1/registry_service.js';
import { benchInstance, benchKey } from './instances.js';
import { describeMachine, writeReport } from './harness.js';
import { CHANNEL_OPTIONS } from './scenarios.js';

export interface ScaleOptions {
  readonly instances: number;
  /** Renewal interval and lease duration of every instance (within the server's bounds). */
  readonly renewalSecs: number;
  readonly durationSecs: number;
  /** Share of the instances that stop renewing at once (%). */
  readonly stopPercent: number;
  /** Extra node (V8) flags for the server process, e.g. ['--max-semi-space-size=32']. */
  readonly nodeArgs: readonly string[];
  /** `roster serve` settings by camelCase name. */
  readonly serverFlags: Readonly<Record<string, unknown>>;
  readonly out?: string;
}

const ROSTER_BIN = fileURLToPath(new URL('../bin/roster.js', import.meta.url));
const PROBE = fileURLToPath(new URL('./scale-probe.js', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const MiB = 2 ** 20;
const CLOCK_TICKS_PER_SECOND = 100;
const PREFIX = 'scale';
/** Registers in flight during the fill: enough to keep one grpc-js connection busy. */
const FILL_IN_FLIGHT = 64;
/** Heartbeats per Heartbeats message (the protocol allows 1..1000). */
const BATCH = 1000;
/** Batches awaiting their answer: bounds what the bench queues when the server stalls. */
const RENEW_WINDOW = 16;
const RENEW_TICK_MS = 50;
const HEALTH_POLL_MS = 1000;
const START_TIMEOUT_MS = 60_000;
const PROBE_TIMEOUT_MS = 60_000;
/** Lines of the server's non-JSON output kept (`--trace-gc` at 1M writes a few thousand). */
const MAX_OTHER_LINES = 200_000;

/** What the probe in the server answers (bench/scale-probe.js). */
interface ProbeAnswer {
  readonly eventLoop: { p50Ms: number; p99Ms: number; maxMs: number; meanMs: number; samples: number };
  readonly gc: Record<string, { count: number; totalMs: number; maxMs: number }>;
  readonly longPauses: { kind: string; ms: number; at: number }[];
  /** Event-loop stalls over 100 ms (server ms): how long, how much of it GC pauses, and which. */
  readonly stalls: { at: number; ms: number; gcMs: number; gc: string[] }[];
  readonly memory: NodeJS.MemoryUsage;
  readonly heap: { used_heap_size: number; total_heap_size: number; heap_size_limit: number };
  /** The server's `performance.now()` when it answered: places its `--trace-gc` lines (ms since start) in phases. */
  readonly serverMs: number;
}

interface Health {
  readonly instances: number;
  readonly selfPreservation: boolean;
  readonly renewalsLastMinute: number;
  readonly expectedRenewalsPerMinute: number;
  readonly lapsedInstances: number;
}

/** The node under test: bin/roster.js in a child process, its JSON log lines counted by message. */
class ScaleNode {
  readonly #pending = new Map<number, (answer: ProbeAnswer) => void>();
  #nextId = 1;

  private constructor(
    readonly child: ChildProcess,
    readonly grpcPort: number,
    readonly httpPort: number,
    /** Log lines so far by message (the reader keeps counting). */
    readonly logCounts: ReadonlyMap<string, number>,
    /** The first 1,000 lines whose message mentions eviction. */
    readonly evictionLines: readonly Record<string, unknown>[],
    /** The server's other output (`--trace-gc` and such), kept for the results directory. */
    readonly otherLines: readonly string[],
    /** The heap growth switches the node logged (src/cli/heap-growth.ts), with their server time. */
    readonly heapGrowthLines: readonly Record<string, unknown>[],
  ) {
    child.on('message', (message: { type?: string; id?: number } & ProbeAnswer) => {
      if (message.type !== 'scale-probe' || message.id === undefined) return;
      this.#pending.get(message.id)?.(message);
      this.#pending.delete(message.id);
    });
  }

  static async start(nodeArgs: readonly string[], serverFlags: Readonly<Record<string, unknown>>): Promise<ScaleNode> {
    const flags = Object.entries({ port: 0, httpPort: 0, logFormat: 'json', logLevel: 'info', ...serverFlags }).flatMap(([k, v]) => [`--${flagOf(k as Parameters<typeof flagOf>[0])}`, String(v)]);
    const forkedAt = performance.now();
    const child = fork(ROSTER_BIN, ['serve', ...flags], { execArgv: ['--import', PROBE, ...nodeArgs], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    const counts = new Map<string, number>();
    const evictions: Record<string, unknown>[] = [];
    const other: string[] = [];
    const heapGrowth: Record<string, unknown>[] = [];
    const ports = await new Promise<{ grpcPort: number; httpPort: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('scale: the node did not start in time')), START_TIMEOUT_MS);
      child.once('exit', (code) => reject(new Error(`scale: the node exited with code ${code} before serving`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          if (other.length < MAX_OTHER_LINES) other.push(line);
          return;
        }
        const msg = String(entry.msg);
        counts.set(msg, (counts.get(msg) ?? 0) + 1);
        if (/evict/.test(msg) && evictions.length < 1000) evictions.push(entry);
        if (msg.startsWith('heap growth') && heapGrowth.length < 100) heapGrowth.push({ ...entry, serverMs: Math.round(performance.now() - forkedAt) });
        if (msg === 'roster started') {
          clearTimeout(timer);
          resolve({ grpcPort: Number(entry.grpcPort), httpPort: Number(entry.httpPort) });
        }
      });
    });
    child.removeAllListeners('exit');
    return new ScaleNode(child, ports.grpcPort, ports.httpPort, counts, evictions, other, heapGrowth);
  }

  get address(): string {
    return `127.0.0.1:${this.grpcPort}`;
  }

  /** The probe's figures for the window so far; `reset` starts a new window. */
  probe(reset: boolean): Promise<ProbeAnswer> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('scale: the probe did not answer')), PROBE_TIMEOUT_MS);
      this.#pending.set(id, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      this.child.send({ type: 'scale-probe', id, reset });
    });
  }

  async health(): Promise<Health> {
    const res = await fetch(`http://127.0.0.1:${this.httpPort}/healthz`, { signal: AbortSignal.timeout(30_000) });
    return (await res.json()) as Health;
  }

  /** Resident set and its peak, from /proc (no forced GC: that would be a stall of its own). */
  rss(): { rssMiB: number; peakRssMiB: number } {
    const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
    const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { rssMiB: round(kib('VmRSS') / 1024), peakRssMiB: round(kib('VmHWM') / 1024) };
  }

  cpuSeconds(): number {
    const stat = readFileSync(`/proc/${this.child.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * Renews every registered instance once per renewal interval over one Heartbeats stream, each
 * on its own schedule: an instance is queued when its registration completes, due one interval
 * later, and queued again for the next interval when renewed (a FIFO, since every instance has
 * the same interval). Stopped instances leave the queue. At most {@link RENEW_WINDOW} batches
 * await their answer: a stalled server delays renewals (which then go out late, all at once)
 * instead of piling up messages in the bench.
 */
class Renewer {
  stopped: (i: number) => boolean = () => false;
  ok = 0;
  notFound = 0;
  otherErrors = 0;
  streamErrors: string[] = [];
  /** Round trips of the batches answered in the current window (ms). */
  roundTrips: number[] = [];
  /** Renewals sent later than due by more than a tick, and the worst lateness (ms). */
  late = 0;
  maxLateMs = 0;
  /** A ring of instance indexes in due order, with when each is due (performance.now() ms). */
  readonly #queue: Int32Array;
  readonly #dueAt: Float64Array;
  #head = 0;
  #length = 0;
  #batchId = 0;
  readonly #sent = new Map<number, number>();
  #stream: grpc.ClientDuplexStream<HeartbeatsRequest, HeartbeatsResponse> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: RosterClient,
    private readonly renewalMs: number,
    capacity: number,
  ) {
    this.#queue = new Int32Array(capacity);
    this.#dueAt = new Float64Array(capacity);
  }

  start(): void {
    this.#open();
    this.#timer = setInterval(() => this.#tick(), RENEW_TICK_MS);
  }

  /** Instance `i` was just registered: its first renewal is due one interval from now. */
  registered(i: number): void {
    this.#push(i, performance.now() + this.renewalMs);
  }

  /** Counters and round trips of the window so far; starts a new one. */
  window(): { ok: number; notFound: number; otherErrors: number; late: number; maxLateMs: number; roundTripP99Ms: number; roundTripMaxMs: number } {
    const sorted = this.roundTrips.sort((a, b) => a - b);
    const out = {
      ok: this.ok,
      notFound: this.notFound,
      otherErrors: this.otherErrors,
      late: this.late,
      maxLateMs: round(this.maxLateMs),
      roundTripP99Ms: round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? Number.NaN),
      roundTripMaxMs: round(sorted.at(-1) ?? Number.NaN),
    };
    this.ok = this.notFound = this.otherErrors = this.late = this.maxLateMs = 0;
    this.roundTrips = [];
    return out;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#stream?.end();
    this.#stream = undefined;
  }

  #push(i: number, dueAt: number): void {
    const at = (this.#head + this.#length) % this.#queue.length;
    this.#queue[at] = i;
    this.#dueAt[at] = dueAt;
    this.#length++;
  }

  #open(): void {
    const stream = this.client.openHeartbeats();
    stream.on('data', (res: HeartbeatsResponse) => {
      const sentAt = this.#sent.get(res.batchId);
      this.#sent.delete(res.batchId);
      if (sentAt !== undefined) this.roundTrips.push(performance.now() - sentAt);
      for (const r of res.results) {
        if (r.code === grpc.status.OK) this.ok++;
        else if (r.code === grpc.status.NOT_FOUND) this.notFound++;
        else this.otherErrors++;
      }
    });
    stream.on('error', (err: Error) => {
      if (this.streamErrors.length < 10) this.streamErrors.push(err.message);
      this.#sent.clear();
      if (this.#stream === stream) this.#stream = undefined;
    });
    this.#stream = stream;
  }

  #tick(): void {
    if (this.#stream === undefined) {
      if (this.streamErrors.length < 10) this.#open();
      return;
    }
    const now = performance.now();
    while (this.#length > 0 && this.#dueAt[this.#head]! <= now && this.#sent.size < RENEW_WINDOW) {
      const heartbeats: HeartbeatsRequest['heartbeats'] = [];
      while (this.#length > 0 && this.#dueAt[this.#head]! <= now && heartbeats.length < BATCH) {
        const i = this.#queue[this.#head]!;
        const lateMs = now - this.#dueAt[this.#head]!;
        this.#head = (this.#head + 1) % this.#queue.length;
        this.#length--;
        if (this.stopped(i)) continue;
        if (lateMs > RENEW_TICK_MS) {
          this.late++;
          this.maxLateMs = Math.max(this.maxLateMs, lateMs);
        }
        const { app, instanceId } = benchKey(i, PREFIX);
        heartbeats.push({ app, instanceId, lastDirtyTimestamp: 0 });
        this.#push(i, now + this.renewalMs);
      }
      if (heartbeats.length === 0) continue;
      const batchId = ++this.#batchId;
      this.#sent.set(batchId, performance.now());
      this.#stream.write({ batchId, heartbeats });
    }
  }
}

/** Registers [0, n) with {@link FILL_IN_FLIGHT} calls at a time; `onRegistered` learns of each success. */
async function fill(
  client: RosterClient,
  n: number,
  lease: { renewalIntervalSecs: number; durationSecs: number },
  onRegistered: (i: number) => void,
): Promise<{ failed: number; firstError?: string }> {
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      try {
        await client.register({ ...benchInstance(i, PREFIX), lease });
        onRegistered(i);
      } catch (err) {
        failed++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: FILL_IN_FLIGHT }, worker));
  return { failed, ...(firstError === undefined ? {} : { firstError }) };
}

/** One full read as raw bytes (ListApplications, default chunks): time to the last byte, bytes, instances. */
async function fullRead(address: string): Promise<{ ms: number; bytes: number; chunks: number; instances: number }> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  try {
    const start = performance.now();
    let bytes = 0;
    let chunks = 0;
    let instances = 0;
    await new Promise<void>((resolve, reject) => {
      const call = client.makeServerStreamRequest(
        '/roster.v1.RegistryService/ListApplications',
        (req: ListApplicationsRequest) => Buffer.from(ListApplicationsRequest.encode(req).finish()),
        (buf: Buffer) => buf,
        ListApplicationsRequest.fromPartial({}),
        { deadline: Date.now() + 300_000 },
      );
      call.on('data', (chunk: Buffer) => {
        if (chunks === 0) instances = ListApplicationsResponse.decode(chunk).totalInstances;
        bytes += chunk.length;
        chunks++;
      });
      call.on('error', reject);
      call.on('end', () => resolve());
    });
    return { ms: round(performance.now() - start), bytes, chunks, instances };
  } finally {
    client.close();
  }
}

/** A phase's figures: what the probe saw in the server, and both processes' CPU. */
interface Phase {
  readonly seconds: number;
  readonly eventLoop: ProbeAnswer['eventLoop'];
  readonly gc: ProbeAnswer['gc'];
  readonly longGcPauses: ProbeAnswer['longPauses'];
  readonly stalls: ProbeAnswer['stalls'];
  readonly serverCores: number;
  readonly benchCores: number;
  readonly loadAverage: number;
  readonly rssMiB: number;
  readonly peakRssMiB: number;
  readonly heapUsedMiB: number;
  /** What V8 reserved for the heap, and memory outside it (Buffers, typed arrays): with heapUsed, where RSS goes. */
  readonly heapTotalMiB: number;
  readonly externalMiB: number;
  readonly renewals: ReturnType<Renewer['window']>;
  /** The phase in the server's `performance.now()` ms: where its `--trace-gc` lines fall. */
  readonly serverMs: readonly [number, number];
}

export async function runScale(options: ScaleOptions): Promise<void> {
  const n = options.instances;
  if (!Number.isInteger(n) || n < 1) throw new Error(`--scale: want a positive number of instances, got ${n}`);
  if (!(options.renewalSecs >= 1 && options.durationSecs >= options.renewalSecs && options.durationSecs <= 3600)) {
    throw new Error(`--scale-lease: want RENEW:DURATION seconds with 1 ≤ RENEW ≤ DURATION ≤ 3600, got ${options.renewalSecs}:${options.durationSecs}`);
  }
  if (!(options.stopPercent >= 0 && options.stopPercent <= 100)) throw new Error(`--scale-stop: want a percentage, got ${options.stopPercent}`);
  const lease = { renewalIntervalSecs: options.renewalSecs, durationSecs: options.durationSecs };
  const startedAt = new Date();
  const loadBefore = loadavg();
  const node = await ScaleNode.start(options.nodeArgs, {
    writesPerSecond: 10_000_000,
    writeBurst: 10_000_000,
    maxInstances: Math.max(n, 1_000_000),
    ...options.serverFlags,
  });
  const client = new RosterClient(node.address, { channelOptions: CHANNEL_OPTIONS, timeoutMs: 60_000 });
  const renewer = new Renewer(client, options.renewalSecs * 1000, n);
  const phases: Record<string, Phase> = {};
  let selfPreservationSeen = false;
  let phaseStart = performance.now();
  let serverCpu = node.cpuSeconds();
  let benchCpu = process.cpuUsage();
  let phaseServerMs = 0;
  const beginPhase = async (): Promise<void> => {
    phaseServerMs = (await node.probe(true)).serverMs;
    renewer.window();
    phaseStart = performance.now();
    serverCpu = node.cpuSeconds();
    benchCpu = process.cpuUsage();
  };
  const endPhase = async (name: string): Promise<Phase> => {
    const probe = await node.probe(true);
    const seconds = (performance.now() - phaseStart) / 1000;
    const bench = process.cpuUsage(benchCpu);
    const phase: Phase = {
      seconds: round(seconds),
      eventLoop: probe.eventLoop,
      gc: Object.fromEntries(Object.entries(probe.gc).map(([k, v]) => [k, { count: v.count, totalMs: round(v.totalMs), maxMs: round(v.maxMs) }])),
      longGcPauses: probe.longPauses,
      stalls: probe.stalls,
      serverCores: round2((node.cpuSeconds() - serverCpu) / seconds),
      benchCores: round2((bench.user + bench.system) / 1e6 / seconds),
      loadAverage: round2(loadavg()[0]!),
      ...node.rss(),
      heapUsedMiB: round(probe.memory.heapUsed / MiB),
      heapTotalMiB: round(probe.memory.heapTotal / MiB),
      externalMiB: round(probe.memory.external / MiB),
      renewals: renewer.window(),
      serverMs: [Math.round(phaseServerMs), Math.round(probe.serverMs)],
    };
    phases[name] = phase;
    process.stderr.write(`scale: ${name} done in ${phase.seconds} s (loop max ${phase.eventLoop.maxMs} ms, RSS ${phase.rssMiB} MiB)\n`);
    return phase;
  };
  const watchHealth = async (until: () => boolean, maxMs: number, each?: (h: Health, elapsedMs: number) => void): Promise<void> => {
    const start = performance.now();
    while (!until() && performance.now() - start < maxMs) {
      await sleep(HEALTH_POLL_MS);
      const h = await node.health();
      selfPreservationSeen ||= h.selfPreservation;
      each?.(h, performance.now() - start);
    }
  };

  try {
    await sleep(1000);
    const empty = node.rss();
    process.stderr.write(`scale: node up, RSS empty ${empty.rssMiB} MiB; filling ${n} ...\n`);

    // 1. Fill through Register, renewing what is registered as it goes.
    await beginPhase();
    renewer.start();
    const fillStart = performance.now();
    let lastReport = fillStart;
    let registered = 0;
    const filled = await fill(client, n, lease, (i) => {
      renewer.registered(i);
      registered++;
      if (performance.now() - lastReport > 10_000) {
        lastReport = performance.now();
        process.stderr.write(`scale: ${registered} registered\n`);
      }
    });
    const fillSeconds = (performance.now() - fillStart) / 1000;
    const fillPhase = await endPhase('fill');
    // Fewer than n: registers failed, or renewals could not keep the pace and leases expired.
    const afterFill = await node.health();

    // 2. One full read, renewals flowing.
    await beginPhase();
    const read = await fullRead(node.address);
    await endPhase('fullRead');

    // 3. Steady renewals for one renewal interval (every instance renewed once).
    await beginPhase();
    await watchHealth(() => false, options.renewalSecs * 1000);
    const steady = await endPhase('steady');
    const steadyHealth = await node.health();

    // 4. A share stops at once: how long until they are evicted; nobody else may be.
    // The same share of every app (benchKey spreads instances over 500 apps: i % 500).
    const stopEvery = (i: number): boolean => (i + Math.floor(i / 500)) % 100 < options.stopPercent;
    let stopping = 0;
    for (let i = 0; i < n; i++) if (stopEvery(i)) stopping++;
    await beginPhase();
    const held = (await node.health()).instances;
    renewer.stopped = stopEvery;
    let firstEvictionMs: number | undefined;
    let allEvictedMs: number | undefined;
    let minRenewalRatio = Number.POSITIVE_INFINITY;
    const maxWaitMs = (options.durationSecs + options.renewalSecs + 60) * 1000;
    await watchHealth(
      () => allEvictedMs !== undefined,
      maxWaitMs,
      (h, elapsed) => {
        const evicted = held - h.instances;
        if (evicted > 0) firstEvictionMs ??= elapsed;
        if (evicted >= stopping) allEvictedMs ??= elapsed;
        if (h.expectedRenewalsPerMinute > 0) minRenewalRatio = Math.min(minRenewalRatio, h.renewalsLastMinute / h.expectedRenewalsPerMinute);
      },
    );
    // Keep renewing the others for one more interval: none of them may be evicted.
    await watchHealth(() => false, options.renewalSecs * 1000);
    const expiry = await endPhase('expiry');
    const finalHealth = await node.health();
    const evictionLines = node.evictionLines;

    const results = {
      instances: n,
      lease,
      stopPercent: options.stopPercent,
      nodeArgs: options.nodeArgs,
      rssEmptyMiB: empty.rssMiB,
      fill: {
        seconds: round(fillSeconds),
        perSecond: Math.round(n / fillSeconds),
        failed: filled.failed,
        ...(filled.firstError === undefined ? {} : { firstError: filled.firstError }),
        heldAfter: afterFill.instances,
        renewalsNotFound: fillPhase.renewals.notFound,
      },
      afterFill: { rssMiB: fillPhase.rssMiB, heapUsedMiB: fillPhase.heapUsedMiB },
      fullRead: read,
      steady: {
        renewalsPerSecond: Math.round(steady.renewals.ok / steady.seconds),
        neededPerSecond: Math.round(n / options.renewalSecs),
        renewalsLastMinute: steadyHealth.renewalsLastMinute,
        expectedRenewalsPerMinute: steadyHealth.expectedRenewalsPerMinute,
      },
      expiry: {
        stopped: stopping,
        firstEvictionSeconds: firstEvictionMs === undefined ? null : round(firstEvictionMs / 1000),
        allEvictedSeconds: allEvictedMs === undefined ? null : round(allEvictedMs / 1000),
        expectedWithinSeconds: options.durationSecs + options.renewalSecs,
        remaining: finalHealth.instances,
        liveEvicted: Math.max(0, held - stopping - finalHealth.instances),
        liveRenewalsNotFound: expiry.renewals.notFound,
        minRenewalRatio: round2(minRenewalRatio),
        selfPreservationEngaged: selfPreservationSeen,
        evictionLogLines: [...node.logCounts].filter(([msg]) => /evict/.test(msg)).reduce((sum, [, c]) => sum + c, 0),
        evictionLogSample: evictionLines.slice(0, 3),
        // The eviction passes' longest slice without a yield to the event loop (the summary lines' field).
        longestEvictionSliceMs: Math.max(0, ...evictionLines.map((l) => Number(l.longestSliceMs ?? 0))),
      },
      phases,
      heapGrowth: node.heapGrowthLines.map(({ msg, heapUsedMiB, heapGrowingPercent, serverMs }) => ({ msg, heapUsedMiB, heapGrowingPercent, serverMs })),
      logCounts: Object.fromEntries(node.logCounts),
    };
    const worstLoop = Math.max(...Object.values(phases).map((p) => p.eventLoop.maxMs));
    const peak = Math.max(...Object.values(phases).map((p) => p.peakRssMiB));
    const targets = [
      ['every instance registered and held after the fill', afterFill.instances === n, `${afterFill.instances} of ${n}`],
      ['peak RSS ≤ 1024 MiB', peak <= 1024, `${peak} MiB`],
      ['no event-loop stall > 100 ms', worstLoop <= 100, `max ${worstLoop} ms`],
      [
        'renewals flowing (steady ≥ 95 % of needed, no live NOT_FOUND)',
        results.steady.renewalsPerSecond >= 0.95 * results.steady.neededPerSecond && results.expiry.liveRenewalsNotFound === 0 && steady.renewals.notFound === 0,
        `${results.steady.renewalsPerSecond}/s of ${results.steady.neededPerSecond}/s`,
      ],
      [
        'stopped instances all evicted, no live one',
        allEvictedMs !== undefined && results.expiry.liveEvicted === 0,
        `${held - finalHealth.instances} of ${stopping} evicted, ${results.expiry.liveEvicted} live lost`,
      ],
      [`self-preservation not engaged (${options.stopPercent} % stopping)`, !selfPreservationSeen, String(selfPreservationSeen)],
    ] as const;
    const report = {
      startedAt: startedAt.toISOString(),
      seconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
      machine: describeMachine(loadBefore),
      results,
      targets: targets.map(([target, met, value]) => ({ target, met, value })),
    };
    console.log(scaleTable(results, phases));
    console.log('');
    console.log(targets.map(([t, met, value]) => `- ${t}: ${met ? 'met' : 'NOT met'} (${value})`).join('\n'));
    console.log(`- eviction: ${results.expiry.evictionLogLines} log lines, longest slice ${results.expiry.longestEvictionSliceMs} ms`);
    const stalls = Object.entries(phases).flatMap(([name, p]) => p.stalls.map((s) => `${name} ${s.ms} ms (GC ${s.gcMs} ms${s.gc.length > 0 ? `: ${s.gc.join(', ')}` : ''})`));
    console.log(`- stalls > 100 ms: ${stalls.length === 0 ? 'none' : stalls.join('; ')}`);
    const switches = results.heapGrowth.map(
      (h) => `${h.heapGrowingPercent === 0 ? "V8's default" : `${String(h.heapGrowingPercent)} %`} at ${String(h.heapUsedMiB)} MiB used (~${Math.round(Number(h.serverMs) / 1000)} s)`,
    );
    console.log(`- heap growth: ${switches.length === 0 ? "V8's default throughout" : switches.join(', ')}`);
    console.log(`\nload average (1 min) before ${report.machine.loadAverageBefore[0]}, after ${report.machine.loadAverageAfter[0]}; ${report.seconds} s`);
    writeReport(report, `${RESULTS_DIR}scale-${n}.json`, options.out);
    if (node.otherLines.length > 0) {
      const path = `${RESULTS_DIR}scale-${n}-server.log`;
      writeFileSync(path, `${node.otherLines.join('\n')}\n`);
      console.log(`wrote ${path} (the server's other output, e.g. --trace-gc; phases' serverMs in the JSON)`);
    }
  } finally {
    renewer.stop();
    await client.close();
    await node.stop();
  }
}

function scaleTable(results: { fill: { perSecond: number }; fullRead: { ms: number; bytes: number } }, phases: Record<string, Phase>): string {
  const header = [
    'phase',
    's',
    'loop p50/p99/max ms',
    'GC count/total/max ms (major)',
    'GC (minor)',
    'renewals ok/s',
    'NOT_FOUND',
    'late renewals (max ms)',
    'RSS MiB',
    'heap used / total, external MiB',
    'server/bench cores',
    'load',
  ];
  const gcCell = (g: Phase['gc'][string] | undefined): string => (g === undefined ? '-' : `${g.count} / ${g.totalMs} / ${g.maxMs}`);
  const rows = Object.entries(phases).map(([name, p]) => [
    name,
    String(p.seconds),
    `${p.eventLoop.p50Ms} / ${p.eventLoop.p99Ms} / ${p.eventLoop.maxMs}`,
    gcCell(p.gc.major),
    gcCell(p.gc.minor),
    String(Math.round(p.renewals.ok / p.seconds)),
    String(p.renewals.notFound),
    `${p.renewals.late} (${p.renewals.maxLateMs})`,
    `${p.rssMiB} (peak ${p.peakRssMiB})`,
    `${p.heapUsedMiB} / ${p.heapTotalMiB}, ${p.externalMiB}`,
    `${p.serverCores} / ${p.benchCores}`,
    String(p.loadAverage),
  ]);
  const line = (c: readonly string[]): string => `| ${c.join(' | ')} |`;
  return [
    `fill ${results.fill.perSecond} registers/s; full read ${results.fullRead.ms} ms, ${round(results.fullRead.bytes / MiB)} MiB`,
    '',
    line(header),
    line(header.map(() => '---')),
    ...rows.map(line),
  ].join('\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
