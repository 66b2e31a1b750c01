/**
 * The three-node replication benchmark: one run that measures replication lag, cross-node
 * Watch latency and convergence after a healed partition, reported as several table rows.
 *
 * Three nodes (bench/server.ts processes, i.e. `startNode` as `roster serve` runs it) on
 * 127.0.0.1, each with the other two as peers and a cluster token. The A↔C link goes through
 * two TCP proxies in this process (A→C and C→A), so the benchmark can cut and heal it while
 * A–B and B–C stay up. The run:
 *
 *  1. start the nodes, wait until they serve and their peers are connected; fill each with
 *     its share of the renewed instances (in-process registers, replicated like any write);
 *  2. load, paced: renewals over one HeartbeatStream per node, each node renewing its own
 *     instances; writes (Register of a changed or a new instance, with a fresh
 *     last_dirty_timestamp) spread over the nodes; after a warm-up, a measured window in
 *     which a sampler also registers a probe instance on one node and times the ADDED event
 *     on Watch streams of the other two; the lag histogram of every node is read before and
 *     after the window;
 *  3. cut A↔C, keep writing on A and C only (plus conflicting writes of the same instances
 *     on both sides and two cancels), stop the writes, heal, and poll ListApplications on
 *     all three until they hold the same records: heal → identical is the convergence time.
 *
 * Renewals go on until the end, as in a real fleet. Every process and proxy is stopped in a
 * `finally`, and every wait is bounded.
 */
import type { PeersReport } from '../src/replication/replicator.js';
import { performance } from 'node:perf_hooks';
import { status } from '@grpc/grpc-js';
import { HeartbeatStream, RosterClient } from '../src/client/index.js';
import { ChangeType, type DeepPartial, type Instance } from '../src/gen/roster/v1/instance.js';
import { median, ServerProcess } from './harness.js';
import { benchInstance, benchKey } from './instances.js';
import type { Budget, ClusterSuite, Measurement } from './scenarios.js';
import { TcpProxy } from '../test/support/tcp-proxy.js';
import { freePorts } from '../test/support/ports.js';

/** What the load asks for (the achieved rates are measured and reported). */
const RENEWALS_PER_SECOND = 10_000;
const WRITES_PER_SECOND = 500;
const PROBES_PER_SECOND = 20;
/** Renewed instances per node: 6,000 in all, each renewed ~1.7 times a second. */
const INSTANCES_PER_NODE = 2_000;
/** One write in this many registers a new instance; the others change an existing one. */
const NEW_INSTANCE_EVERY = 5;
/** Instances written on both sides of the partition, to exercise the version tie-break. */
const CONFLICTING_INSTANCES = 5;
/** The pacing timer; each tick issues what is due since the start (catching up on late ticks). */
const TICK_MS = 10;
/** Back-pressure: beyond these, due operations are skipped (and counted), not queued. */
const MAX_OUTSTANDING_WRITES = 500;
const MAX_QUEUED_RENEWALS = 20_000;
/** Bounds on every wait. */
const START_TIMEOUT_MS = 30_000;
const CONVERGENCE_LIMIT_MS = 30_000;
const PROBE_GRACE_MS = 3_000;
const HTTP_TIMEOUT_MS = 2_000;
const CALL_TIMEOUT_MS = 10_000;
const CLEANUP_STEP_MS = 15_000;
/** After convergence: how long the links are watched to see them all moving tasks. */
const LINK_CHECK_MS = 1_000;

const TOKEN = 'bench-cluster-token';
const POOL_PREFIX = 'rep';
const NEW_PREFIX = 'rep-new';
const PROBE_APP = 'rep-probe';
/** The write rate limit is lifted, as in the single-node throughput suite. */
const UNLIMITED_WRITES = { writesPerSecond: 10_000_000, writeBurst: 10_000_000 };
const MiB = 1024 * 1024;

type NodeName = 'a' | 'b' | 'c';
const NAMES: readonly NodeName[] = ['a', 'b', 'c'];

/** The rows the run reports, by scenario id. */
export const REPLICATION_SUITE: ClusterSuite = {
  name: 'replication',
  scenarios: [
    { id: 'repl-renewals', title: 'g. three nodes: renewals achieved (HeartbeatStream per node, 10,000/s asked)', unit: 'renewals/s' },
    { id: 'repl-writes', title: 'g. three nodes: writes achieved (Register, 500/s asked)', unit: 'writes/s' },
    { id: 'repl-lag-p50', title: 'g. replication lag p50 (lag histogram, bucket-interpolated)', unit: 'ms' },
    {
      id: 'repl-lag-p99',
      title: 'g. replication lag p99 (lag histogram, bucket-interpolated)',
      unit: 'ms',
      target: () => ({ atMost: 100 }),
    },
    { id: 'repl-watch-p50', title: 'h. Register on one node → Watch ADDED on another, p50', unit: 'ms' },
    {
      id: 'repl-watch-p99',
      title: 'h. Register on one node → Watch ADDED on another, p99',
      unit: 'ms',
      target: () => ({ atMost: 100, note: 'the lag target, end to end' }),
    },
    {
      id: 'repl-convergence',
      title: 'i. A↔C partition healed → all three identical',
      unit: 'ms',
      target: () => ({ atMost: 5_000 }),
    },
    {
      id: 'repl-dropped',
      title: 'replication tasks dropped or expired, all peers, whole run',
      unit: 'tasks',
      target: () => ({ atMost: 0 }),
    },
    { id: 'repl-node-cpu', title: 'busiest node during the window', unit: 'cores' },
    { id: 'repl-node-rss', title: 'largest node RSS after the run (after GC)', unit: 'MiB' },
  ],
  run: runReplication,
};

/** The A↔C link: A dials C through `aToC`, C dials A through `cToA`. */
interface Proxies {
  readonly aToC: TcpProxy;
  readonly cToA: TcpProxy;
}

/** One node of the cluster as the benchmark drives it. */
interface ClusterNode {
  readonly name: NodeName;
  readonly server: ServerProcess;
  readonly httpPort: number;
  readonly client: RosterClient;
  readonly heartbeats: HeartbeatStream;
}

/** What `/peers` on a node's HTTP port reports (the fields used here). */

/** Cumulative bucket counts of the lag histogram, by upper bound in seconds (+Inf last). */
type Buckets = ReadonlyMap<number, number>;

async function runReplication(options: { budget: Budget; serverFlags: Readonly<Record<string, unknown>> }): Promise<ReadonlyMap<string, Measurement>> {
  const { budget } = options;
  const cleanup = new Cleanup();
  try {
    const { nodes, proxies } = await startCluster(options.serverFlags, cleanup);
    const [a, , c] = nodes as [ClusterNode, ClusterNode, ClusterNode];

    // 1. Every node holds every renewed instance before the load starts.
    await Promise.all(nodes.map((n, k) => n.server.populate(k * INSTANCES_PER_NODE, (k + 1) * INSTANCES_PER_NODE, POOL_PREFIX)));
    const pool = nodes.length * INSTANCES_PER_NODE;
    await waitUntil('every node holds the initial instances', START_TIMEOUT_MS, async () => (await Promise.all(nodes.map((n) => n.server.size()))).every((size) => size === pool));

    // 2. Steady load, then a measured window with the Watch sampler.
    const load = new Load(nodes);
    cleanup.add('load', () => load.stop());
    const probes = await WatchProbes.start(nodes);
    cleanup.add('watches', () => probes.stop());
    const lagAtLoadStart = await Promise.all(nodes.map(lagBuckets));
    load.start();
    await sleep(budget.replicationWarmupMs);

    const scrapeLag = async (): Promise<Buckets> => (await Promise.all(nodes.map(lagBuckets))).reduce(addBuckets);
    const lagBefore = await Promise.all(nodes.map(lagBuckets));
    const cpuBefore = nodes.map((n) => n.server.cpuSeconds());
    const benchCpuBefore = process.cpuUsage();
    const loadBefore = load.counters();
    const windowStart = performance.now();
    probes.startSampling(windowStart);
    // The whole cluster's histogram every second too: shows whether the tail is spread over
    // the window or bunched (e.g. at its start).
    const lagBySecond: Buckets[] = [];
    let previous = lagBefore.reduce(addBuckets);
    for (let second = 1; second * 1000 <= budget.replicationWindowMs; second++) {
      await sleep(windowStart + second * 1000 - performance.now());
      const current = await scrapeLag();
      lagBySecond.push(subtractBuckets(current, previous));
      previous = current;
    }
    await sleep(windowStart + budget.replicationWindowMs - performance.now());
    probes.stopSampling();
    const windowSeconds = (performance.now() - windowStart) / 1000;
    const loadAfter = load.counters();
    const cpuAfter = nodes.map((n) => n.server.cpuSeconds());
    const benchCpu = process.cpuUsage(benchCpuBefore);
    const lagAfter = await Promise.all(nodes.map(lagBuckets));
    const peersAfterWindow = await Promise.all(nodes.map(peersReport));
    const watch = await probes.latencies(PROBE_GRACE_MS);

    // 3. Partition A↔C; writes on A and C only; heal; time until the three agree.
    const partition = await partitionAndHeal({ a, c, nodes, load, proxies, budget });

    // With renewals still running, every link must be moving tasks again (a stream stuck
    // after the heal would show here, even though a Snapshot pull can converge without it).
    const peersAtEnd = await Promise.all(nodes.map(peersReport));
    await sleep(LINK_CHECK_MS);
    const peersAfterCheck = await Promise.all(nodes.map(peersReport));
    await load.stop();
    const memory = await Promise.all(nodes.map((n) => n.server.memory()));
    // What the nodes should hold: the renewed pool, every probe and every acknowledged new
    // instance, minus the cancels.
    const expectedInstances = pool + watch.probes + load.newInstancesRegistered() - partition.cancelled.length;

    return measurements({
      nodes,
      proxies,
      windowSeconds,
      load: diffCounters(loadAfter, loadBefore),
      loadFirstError: load.firstError,
      lag: { atLoadStart: lagAtLoadStart, before: lagBefore, after: lagAfter, bySecond: lagBySecond },
      cpu: nodes.map((_, k) => (cpuAfter[k]! - cpuBefore[k]!) / windowSeconds),
      benchCores: (benchCpu.user + benchCpu.system) / 1e6 / windowSeconds,
      watch,
      partition,
      expectedInstances,
      peersAfterWindow,
      peersAtEnd,
      peersAfterCheck,
      memory,
    });
  } finally {
    await cleanup.run();
  }
}

/**
 * Starts the three nodes on free loopback ports, A↔C through the proxies, and waits until
 * each serves reads and sees both peers connected.
 */
async function startCluster(serverFlags: Readonly<Record<string, unknown>>, cleanup: Cleanup): Promise<{ nodes: ClusterNode[]; proxies: Proxies }> {
  const [grpcA, grpcB, grpcC, ...httpPorts] = await freePorts(6);
  const aToC = await TcpProxy.start(grpcC!);
  cleanup.add('proxy A→C', () => aToC.close());
  const cToA = await TcpProxy.start(grpcA!);
  cleanup.add('proxy C→A', () => cToA.close());
  const local = (port: number | undefined): string => `127.0.0.1:${port}`;
  const peers: Record<NodeName, string[]> = {
    a: [local(grpcB), aToC.address],
    b: [local(grpcA), local(grpcC)],
    c: [cToA.address, local(grpcB)],
  };
  const grpcPorts = [grpcA!, grpcB!, grpcC!];
  const started = await Promise.allSettled(
    NAMES.map((name, k) =>
      ServerProcess.start({
        ...UNLIMITED_WRITES,
        port: grpcPorts[k],
        httpPort: httpPorts[k],
        nodeId: `bench-${name}`,
        peers: peers[name].join(','),
        clusterToken: TOKEN,
        startupWaitSecs: 20,
        shutdownGraceMs: 1_000,
        ...serverFlags,
      }),
    ),
  );
  cleanup.add('nodes', async () => {
    await Promise.all(started.map((result) => (result.status === 'fulfilled' ? result.value.stop() : undefined)));
  });
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;

  const nodes = started.map((result, k): ClusterNode => {
    const server = (result as PromiseFulfilledResult<ServerProcess>).value;
    const client = new RosterClient(server.address, { timeoutMs: CALL_TIMEOUT_MS });
    const heartbeats = new HeartbeatStream(client, { maxQueued: MAX_QUEUED_RENEWALS * 2 });
    cleanup.add(`client ${NAMES[k]}`, async () => {
      await heartbeats.close(1_000);
      client.close();
    });
    return { name: NAMES[k]!, server, httpPort: httpPorts[k]!, client, heartbeats };
  });
  await Promise.all(
    nodes.map((n) =>
      waitUntil(`node ${n.name} ready with both peers connected`, START_TIMEOUT_MS, async () => {
        const ready = await httpGet(n, '/readyz').then(
          (res) => res.ok,
          () => false,
        );
        return ready && (await peersReport(n)).peers.filter((p) => p.connected).length === 2;
      }),
    ),
  );
  return { nodes, proxies: { aToC, cToA } };
}

/** Counters of the paced load; `skipped` are operations that were due but held back by back-pressure. */
interface LoadCounters {
  readonly renewalsOk: number;
  readonly renewalsFailed: number;
  readonly renewalsSkipped: number;
  readonly writesOk: number;
  readonly writesFailed: number;
  readonly writesSkipped: number;
}

function diffCounters(after: LoadCounters, before: LoadCounters): LoadCounters {
  return {
    renewalsOk: after.renewalsOk - before.renewalsOk,
    renewalsFailed: after.renewalsFailed - before.renewalsFailed,
    renewalsSkipped: after.renewalsSkipped - before.renewalsSkipped,
    writesOk: after.writesOk - before.writesOk,
    writesFailed: after.writesFailed - before.writesFailed,
    writesSkipped: after.writesSkipped - before.writesSkipped,
  };
}

/**
 * Renewals and writes at fixed rates. Each timer tick issues what is due since the start, so a
 * late tick catches up and the rate holds; renewal `n` goes to node `n % 3`, for one of that
 * node's own instances (an instance renews at the node it registered with). Writes go to
 * `writeNodes` in turn: a new instance every {@link NEW_INSTANCE_EVERY}th write, otherwise a
 * metadata change of one of the node's instances, each with a fresh last_dirty_timestamp.
 */
class Load {
  readonly #nodes: readonly ClusterNode[];
  #writeNodes: readonly ClusterNode[];
  #timer: NodeJS.Timeout | undefined;
  #startedAt = 0;
  #renewalsIssued = 0;
  #writesIssued = 0;
  #newInstances = 0;
  readonly #outstandingWrites = new Set<Promise<unknown>>();
  /** The last dirty timestamp written per instance key, so versions strictly increase. */
  readonly #versions = new Map<string, number>();
  /** New instances registered (and acknowledged) at each node, for the partition's cancels. */
  readonly newAt = new Map<NodeName, DeepPartial<Instance>[]>();
  readonly #counters = { renewalsOk: 0, renewalsFailed: 0, renewalsSkipped: 0, writesOk: 0, writesFailed: 0, writesSkipped: 0 };
  firstError: string | undefined;

  constructor(nodes: readonly ClusterNode[]) {
    this.#nodes = nodes;
    this.#writeNodes = nodes;
  }

  start(): void {
    this.#startedAt = performance.now();
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
  }

  counters(): LoadCounters {
    return { ...this.#counters };
  }

  /** From now on, writes go only to these nodes (at the same total rate). */
  writeTo(nodes: readonly ClusterNode[]): void {
    this.#writeNodes = nodes;
  }

  /** Stops issuing writes (renewals go on) and waits, bounded, for those in flight. */
  async pauseWrites(): Promise<void> {
    this.#writeNodes = [];
    await withTimeout(Promise.allSettled([...this.#outstandingWrites]), CALL_TIMEOUT_MS);
  }

  /** A write of `instance` at `node` with the next version of that instance; tracked like the paced ones. */
  write(node: ClusterNode, instance: DeepPartial<Instance>): Promise<boolean> {
    const key = `${instance.app}/${instance.instanceId}`;
    const version = Math.max(Date.now(), (this.#versions.get(key) ?? 0) + 1);
    this.#versions.set(key, version);
    const call = node.client.register({ ...instance, lastDirtyTimestamp: version }).then(
      () => {
        this.#counters.writesOk++;
        return true;
      },
      (err: unknown) => {
        this.#counters.writesFailed++;
        this.firstError ??= errorMessage(err);
        return false;
      },
    );
    this.#outstandingWrites.add(call);
    void call.finally(() => this.#outstandingWrites.delete(call));
    return call;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.pauseWrites();
  }

  newInstancesRegistered(): number {
    return [...this.newAt.values()].reduce((n, list) => n + list.length, 0);
  }

  #tick(): void {
    const elapsedSeconds = (performance.now() - this.#startedAt) / 1000;
    const renewalsDue = Math.floor(RENEWALS_PER_SECOND * elapsedSeconds);
    for (; this.#renewalsIssued < renewalsDue; this.#renewalsIssued++) this.#renew(this.#renewalsIssued);
    const writesDue = Math.floor(WRITES_PER_SECOND * elapsedSeconds);
    for (; this.#writesIssued < writesDue; this.#writesIssued++) this.#pacedWrite(this.#writesIssued);
  }

  #renew(n: number): void {
    const k = n % this.#nodes.length;
    const node = this.#nodes[k]!;
    if (node.heartbeats.queued >= MAX_QUEUED_RENEWALS) {
      this.#counters.renewalsSkipped++;
      return;
    }
    const i = k * INSTANCES_PER_NODE + (Math.floor(n / this.#nodes.length) % INSTANCES_PER_NODE);
    const { app, instanceId } = benchKey(i, POOL_PREFIX);
    void node.heartbeats.heartbeat(app, instanceId).then((result) => {
      if (result.code === status.OK) this.#counters.renewalsOk++;
      else {
        this.#counters.renewalsFailed++;
        this.firstError ??= `renewal: code ${result.code} ${result.message}`;
      }
    });
  }

  #pacedWrite(w: number): void {
    const targets = this.#writeNodes;
    if (targets.length === 0) return;
    if (this.#outstandingWrites.size >= MAX_OUTSTANDING_WRITES) {
      this.#counters.writesSkipped++;
      return;
    }
    const node = targets[w % targets.length]!;
    if (w % NEW_INSTANCE_EVERY === NEW_INSTANCE_EVERY - 1) {
      const instance = benchInstance(this.#newInstances++, NEW_PREFIX);
      void this.write(node, instance).then((ok) => {
        if (ok) this.newAt.set(node.name, [...(this.newAt.get(node.name) ?? []), instance]);
      });
      return;
    }
    const k = this.#nodes.indexOf(node);
    const i = k * INSTANCES_PER_NODE + Math.floor(Math.random() * INSTANCES_PER_NODE);
    void this.write(node, changed(i, `w${w}`));
  }
}

/** Instance `i` of the renewed pool with a changed metadata entry. */
function changed(i: number, change: string): DeepPartial<Instance> {
  const instance = benchInstance(i, POOL_PREFIX);
  return { ...instance, metadata: { ...instance.metadata, change } };
}

/** Latencies of the register → Watch ADDED sampler, in ms. */
interface WatchLatencies {
  /** Arrivals at the two nodes that did not take the register. */
  readonly remote: number[];
  /** Arrivals at the node that took it, for reference. */
  readonly local: number[];
  /** Remote latencies by origin→watcher pair, e.g. "a→c". */
  readonly byPair: Readonly<Record<string, number[]>>;
  /** Remote latencies by the second (since sampling started) their probe was sent in. */
  readonly remoteBySecond: readonly number[][];
  readonly probes: number;
  readonly failedRegisters: number;
  /** Remote events that had not arrived within the grace period. */
  readonly missing: number;
  readonly watchErrors: readonly string[];
}

/**
 * A Watch stream on every node, filtered by a dedicated app, and a sampler that registers a
 * unique probe instance at {@link PROBES_PER_SECOND}, on the nodes in turn. Times are taken
 * with this process's monotonic clock: sent just before the Register call, arrival when the
 * ADDED change is read from a node's stream.
 */
class WatchProbes {
  readonly #nodes: readonly ClusterNode[];
  readonly #abort = new AbortController();
  readonly #streams: Promise<void>[] = [];
  readonly #sent = new Map<string, { origin: NodeName; at: number }>();
  readonly #arrivals = new Map<string, number>();
  readonly #errors: string[] = [];
  #sampler: NodeJS.Timeout | undefined;
  #failedRegisters = 0;
  #next = 0;
  #samplingSince = 0;
  #samplingSeconds = 0;

  private constructor(nodes: readonly ClusterNode[]) {
    this.#nodes = nodes;
  }

  /** Opens the Watch streams and waits (bounded) until each has answered. */
  static async start(nodes: readonly ClusterNode[]): Promise<WatchProbes> {
    const probes = new WatchProbes(nodes);
    const opened = nodes.map((node) => new Promise<void>((resolve) => probes.#streams.push(probes.#watch(node, resolve))));
    await withTimeout(Promise.all(opened), START_TIMEOUT_MS, 'Watch streams did not open');
    return probes;
  }

  startSampling(since: number): void {
    this.#samplingSince = since;
    this.#sampler = setInterval(() => this.#probe(), 1000 / PROBES_PER_SECOND);
  }

  stopSampling(): void {
    if (this.#sampler === undefined) return;
    clearInterval(this.#sampler);
    this.#sampler = undefined;
    this.#samplingSeconds = Math.max(1, Math.round((performance.now() - this.#samplingSince) / 1000));
  }

  /** Waits up to `graceMs` for the events still on their way, then computes the latencies. */
  async latencies(graceMs: number): Promise<WatchLatencies> {
    const expected = (): number => this.#sent.size * this.#nodes.length;
    const deadline = performance.now() + graceMs;
    while (this.#arrivalsOfSent() < expected() && performance.now() < deadline) await sleep(20);
    const remote: number[] = [];
    const local: number[] = [];
    const byPair: Record<string, number[]> = {};
    const remoteBySecond: number[][] = [];
    let missing = 0;
    for (const [id, { origin, at }] of this.#sent) {
      for (const node of this.#nodes) {
        const arrival = this.#arrivals.get(`${node.name}|${id}`);
        if (arrival === undefined) {
          if (node.name !== origin) missing++;
          continue;
        }
        const latency = arrival - at;
        if (node.name === origin) local.push(latency);
        else {
          remote.push(latency);
          (byPair[`${origin}→${node.name}`] ??= []).push(latency);
          // A probe sent in the window's last instant counts in its last second.
          const second = Math.min(Math.floor((at - this.#samplingSince) / 1000), this.#samplingSeconds - 1);
          while (remoteBySecond.length <= second) remoteBySecond.push([]);
          remoteBySecond[second]!.push(latency);
        }
      }
    }
    return { remote, local, byPair, remoteBySecond, probes: this.#sent.size, failedRegisters: this.#failedRegisters, missing, watchErrors: this.#errors };
  }

  async stop(): Promise<void> {
    this.stopSampling();
    this.#abort.abort();
    await withTimeout(Promise.allSettled(this.#streams), CALL_TIMEOUT_MS);
  }

  #arrivalsOfSent(): number {
    let n = 0;
    for (const id of this.#sent.keys()) for (const node of this.#nodes) if (this.#arrivals.has(`${node.name}|${id}`)) n++;
    return n;
  }

  #probe(): void {
    const k = this.#next++;
    const origin = this.#nodes[k % this.#nodes.length]!;
    const id = `probe-${k}`;
    const instance: DeepPartial<Instance> = {
      app: PROBE_APP,
      instanceId: id,
      hostName: `${id}.hosts.internal`,
      ipAddr: '10.200.0.1',
      port: { number: 8080, enabled: true },
      lease: { renewalIntervalSecs: 30, durationSecs: 3600 },
    };
    this.#sent.set(id, { origin: origin.name, at: performance.now() });
    origin.client.register(instance).catch(() => {
      this.#sent.delete(id);
      this.#failedRegisters++;
    });
  }

  async #watch(node: ClusterNode, opened: () => void): Promise<void> {
    try {
      for await (const message of node.client.watch({ app: PROBE_APP }, { signal: this.#abort.signal })) {
        const now = performance.now();
        opened();
        for (const change of message.changes) {
          const id = change.instance?.instanceId;
          if (change.type === ChangeType.CHANGE_TYPE_ADDED && id !== undefined) this.#arrivals.set(`${node.name}|${id}`, now);
        }
        if (message.resyncRequired) this.#errors.push(`${node.name}: watch asked to resync`);
      }
    } catch (err) {
      if (!this.#abort.signal.aborted) this.#errors.push(`${node.name}: ${errorMessage(err)}`);
    }
  }
}

/** What the partition phase measured. */
interface PartitionResult {
  /** Heal → the first poll that found the three nodes identical; undefined if they never did. */
  readonly convergedMs: number | undefined;
  /** Heal → the start of the last poll that still found a difference (undefined: the first poll agreed). */
  readonly lastDifferingPollMs: number | undefined;
  /** Heal → both A→C and C→A replication streams connected again (from /peers). */
  readonly reconnectedMs: number | undefined;
  readonly polls: number;
  /** How long one poll (three ListApplications, compared) took: the resolution of convergedMs. */
  readonly pollMs: number;
  readonly partitionMs: number;
  readonly writesDuringPartition: LoadCounters;
  readonly cancelled: readonly string[];
  readonly cancelErrors: readonly string[];
  /** Per link, when anti-entropy last ran, in ms relative to the heal. */
  readonly lastReconcileMs: Readonly<Record<string, number | null>>;
  readonly conflicting: number;
  /** Instances each node holds at the last poll. */
  readonly instances: Record<NodeName, number>;
  /** Cancelled instances that some node still holds at the last poll. */
  readonly resurrected: number;
}

async function partitionAndHeal(ctx: {
  readonly a: ClusterNode;
  readonly c: ClusterNode;
  readonly nodes: readonly ClusterNode[];
  readonly load: Load;
  readonly proxies: Proxies;
  readonly budget: Budget;
}): Promise<PartitionResult> {
  const { a, c, nodes, load, proxies, budget } = ctx;
  const peerOf = (from: ClusterNode): string => (from === a ? proxies.aToC.address : proxies.cToA.address);
  const linkUp = async (from: ClusterNode): Promise<boolean> => (await peersReport(from)).peers.find((p) => p.peer === peerOf(from))?.connected === true;

  proxies.aToC.cut(true);
  proxies.cToA.cut(true);
  await waitUntil('A and C see their link down', 5_000, async () => !(await linkUp(a)) && !(await linkUp(c)));
  const cutAt = performance.now();
  const before = load.counters();
  load.writeTo([a, c]);

  // The same instances changed on both sides (A's first, then C's a moment later), and one
  // instance cancelled on each side: each registered there before the partition.
  const conflicting = Array.from({ length: CONFLICTING_INSTANCES }, (_, j) => j);
  await Promise.all(conflicting.map((i) => load.write(a, changed(i, 'conflict-at-a'))));
  await Promise.all(conflicting.map((i) => load.write(c, changed(i, 'conflict-at-c'))));
  const cancelled: string[] = [];
  const cancelErrors: string[] = [];
  for (const node of [a, c]) {
    const victim = load.newAt.get(node.name)?.[0];
    if (victim === undefined) continue;
    try {
      await node.client.cancel(victim.app!, victim.instanceId!);
      cancelled.push(`${victim.app}/${victim.instanceId}`);
    } catch (err) {
      cancelErrors.push(`${node.name}: ${errorMessage(err)}`);
    }
  }

  await sleep(Math.max(0, budget.partitionMs - (performance.now() - cutAt)));
  await load.pauseWrites();
  const writesDuringPartition = diffCounters(load.counters(), before);
  const partitionMs = performance.now() - cutAt;

  proxies.aToC.accept();
  proxies.cToA.accept();
  const healedAt = performance.now();
  const healedAtWall = Date.now();
  let reconnectedMs: number | undefined;
  const reconnectWatch = (async () => {
    while (reconnectedMs === undefined && performance.now() - healedAt < CONVERGENCE_LIMIT_MS) {
      if ((await linkUp(a).catch(() => false)) && (await linkUp(c).catch(() => false))) reconnectedMs = performance.now() - healedAt;
      else await sleep(25);
    }
  })();
  let convergedMs: number | undefined;
  let lastDifferingPollMs: number | undefined;
  let polls = 0;
  let contents: string[] = [];
  const pollTimes: number[] = [];
  while (performance.now() - healedAt < CONVERGENCE_LIMIT_MS) {
    const pollStart = performance.now();
    contents = await Promise.all(nodes.map(comparableContents));
    pollTimes.push(performance.now() - pollStart);
    polls++;
    if (contents.every((x) => x === contents[0])) {
      convergedMs = performance.now() - healedAt;
      break;
    }
    lastDifferingPollMs = pollStart - healedAt;
    await sleep(20);
  }
  await reconnectWatch;
  // When each link last ran anti-entropy, relative to the heal (negative: before it).
  const reconciles = await Promise.all(nodes.map(peersReport));
  const lastReconcileMs: Record<string, number | null> = {};
  nodes.forEach((node, k) => {
    for (const p of reconciles[k]!.peers) {
      lastReconcileMs[`${node.name}→${p.peer}`] = p.lastReconcileAt === undefined ? null : p.lastReconcileAt - healedAtWall;
    }
  });

  const held = contents.map((s) => JSON.parse(s) as { app: string; instanceId: string }[]);
  const keys = new Set(held.flat().map((i) => `${i.app}/${i.instanceId}`));
  return {
    convergedMs,
    lastDifferingPollMs,
    reconnectedMs,
    polls,
    pollMs: median(pollTimes),
    partitionMs,
    writesDuringPartition,
    cancelled,
    cancelErrors,
    lastReconcileMs,
    conflicting: CONFLICTING_INSTANCES,
    instances: { a: held[0]!.length, b: held[1]!.length, c: held[2]!.length },
    resurrected: cancelled.filter((key) => keys.has(key)).length,
  };
}

/** A node's records as a string to compare, without what is node-local (lease times, last update). */
async function comparableContents(node: ClusterNode): Promise<string> {
  const { instances } = await node.client.listApplications({ timeoutMs: CALL_TIMEOUT_MS });
  return JSON.stringify(
    instances.map((i) => ({
      ...i,
      lease: i.lease && { ...i.lease, registrationTimestamp: 0, lastRenewalTimestamp: 0, serviceUpTimestamp: 0, evictionTimestamp: 0 },
      lastUpdatedTimestamp: 0,
    })),
  );
}

/** Turns the run's raw observations into one measurement per row. */
function measurements(run: {
  readonly nodes: readonly ClusterNode[];
  readonly proxies: Proxies;
  readonly windowSeconds: number;
  readonly load: LoadCounters;
  readonly loadFirstError: string | undefined;
  readonly lag: {
    readonly atLoadStart: readonly Buckets[];
    readonly before: readonly Buckets[];
    readonly after: readonly Buckets[];
    readonly bySecond: readonly Buckets[];
  };
  readonly cpu: readonly number[];
  readonly benchCores: number;
  readonly watch: WatchLatencies;
  readonly partition: PartitionResult;
  readonly expectedInstances: number;
  readonly peersAfterWindow: readonly PeersReport[];
  readonly peersAtEnd: readonly PeersReport[];
  readonly peersAfterCheck: readonly PeersReport[];
  readonly memory: readonly Awaited<ReturnType<ServerProcess['memory']>>[];
}): Map<string, Measurement> {
  const byNode = <T>(values: readonly T[]): Record<string, T> => Object.fromEntries(run.nodes.map((n, k) => [n.name, values[k]!]));
  const lagDeltas = run.nodes.map((_, k) => subtractBuckets(run.lag.after[k]!, run.lag.before[k]!));
  const lag = lagDeltas.reduce(addBuckets);
  const warmup = run.nodes.map((_, k) => subtractBuckets(run.lag.before[k]!, run.lag.atLoadStart[k]!)).reduce(addBuckets);
  const lagDetails = {
    observations: total(lag),
    // Exact from the bucket counts (0.1 s is a bucket bound), unlike the interpolated quantiles.
    fractionWithin100ms: round4(countAtMost(lag, 0.1) / total(lag)),
    bucketsSeconds: Object.fromEntries([...lag].map(([le, count]) => [String(le), count])),
    p50ByNodeMs: byNode(lagDeltas.map((d) => round2(bucketQuantile(d, 0.5) * 1000))),
    p99ByNodeMs: byNode(lagDeltas.map((d) => round2(bucketQuantile(d, 0.99) * 1000))),
    // The warm-up before the window (load on, nodes freshly started and filled), for comparison.
    warmupP50Ms: round2(bucketQuantile(warmup, 0.5) * 1000),
    warmupP99Ms: round2(bucketQuantile(warmup, 0.99) * 1000),
    // Second by second through the window, all nodes together.
    p50BySecondMs: run.lag.bySecond.map((b) => round2(bucketQuantile(b, 0.5) * 1000)),
    p99BySecondMs: run.lag.bySecond.map((b) => round2(bucketQuantile(b, 0.99) * 1000)),
  };
  const { remote, local, byPair, remoteBySecond } = run.watch;
  const watchDetails = {
    samples: remote.length,
    probes: run.watch.probes,
    failedRegisters: run.watch.failedRegisters,
    missingEvents: run.watch.missing,
    watchErrors: run.watch.watchErrors,
    maxMs: remote.length === 0 ? null : round2(Math.max(...remote)),
    sameNodeP50Ms: round2(quantile(local, 0.5)),
    sameNodeP99Ms: round2(quantile(local, 0.99)),
    byPairP50Ms: Object.fromEntries(
      Object.entries(byPair)
        .sort()
        .map(([pair, xs]) => [pair, round2(quantile(xs, 0.5))]),
    ),
    byPairP99Ms: Object.fromEntries(
      Object.entries(byPair)
        .sort()
        .map(([pair, xs]) => [pair, round2(quantile(xs, 0.99))]),
    ),
    // Remote latencies by the second of the window the probe was sent in.
    maxBySecondMs: remoteBySecond.map((xs) => (xs.length === 0 ? null : round2(Math.max(...xs)))),
    p50BySecondMs: remoteBySecond.map((xs) => round2(quantile(xs, 0.5))),
  };
  const peerTotals = (reports: readonly PeersReport[]) => {
    const all = reports.flatMap((r) => r.peers);
    const sum = (field: 'dropped' | 'expired' | 'tasksSent' | 'reconnects' | 'conflicts' | 'notFound'): number => all.reduce((n, p) => n + p[field], 0);
    return { dropped: sum('dropped'), expired: sum('expired'), tasksSent: sum('tasksSent'), reconnects: sum('reconnects'), conflicts: sum('conflicts'), notFound: sum('notFound') };
  };
  const atEnd = peerTotals(run.peersAtEnd);
  const { partition } = run;
  const rss = run.memory.map((m) => m.rss / MiB);
  const busiest = Math.max(...run.cpu);
  return new Map<string, Measurement>([
    [
      'repl-renewals',
      {
        value: run.load.renewalsOk / run.windowSeconds,
        details: {
          asked: RENEWALS_PER_SECOND,
          windowSeconds: round2(run.windowSeconds),
          ok: run.load.renewalsOk,
          failed: run.load.renewalsFailed,
          skipped: run.load.renewalsSkipped,
          instances: INSTANCES_PER_NODE * run.nodes.length,
          ...(run.loadFirstError === undefined ? {} : { firstError: run.loadFirstError }),
        },
      },
    ],
    [
      'repl-writes',
      {
        value: run.load.writesOk / run.windowSeconds,
        details: { asked: WRITES_PER_SECOND, ok: run.load.writesOk, failed: run.load.writesFailed, skipped: run.load.writesSkipped, newInstanceEvery: NEW_INSTANCE_EVERY },
      },
    ],
    ['repl-lag-p50', { value: bucketQuantile(lag, 0.5) * 1000, details: lagDetails }],
    ['repl-lag-p99', { value: bucketQuantile(lag, 0.99) * 1000, details: lagDetails }],
    ['repl-watch-p50', { value: quantile(remote, 0.5), details: watchDetails }],
    ['repl-watch-p99', { value: quantile(remote, 0.99), details: watchDetails }],
    [
      'repl-convergence',
      {
        // A run that did not converge reports the polling bound, and `converged: false`.
        value: partition.convergedMs ?? CONVERGENCE_LIMIT_MS,
        details: {
          converged: partition.convergedMs !== undefined,
          limitMs: CONVERGENCE_LIMIT_MS,
          lastDifferingPollMs: partition.lastDifferingPollMs === undefined ? null : Math.round(partition.lastDifferingPollMs),
          reconnectedMs: partition.reconnectedMs === undefined ? null : Math.round(partition.reconnectedMs),
          polls: partition.polls,
          pollMs: Math.round(partition.pollMs),
          partitionMs: Math.round(partition.partitionMs),
          writesDuringPartition: partition.writesDuringPartition.writesOk,
          failedWritesDuringPartition: partition.writesDuringPartition.writesFailed,
          conflictingInstances: partition.conflicting,
          cancelled: partition.cancelled,
          cancelErrors: partition.cancelErrors,
          lastReconcileMs: partition.lastReconcileMs,
          proxies: { aToC: run.proxies.aToC.address, cToA: run.proxies.cToA.address },
          resurrected: partition.resurrected,
          instances: partition.instances,
          expectedInstances: run.expectedInstances,
        },
      },
    ],
    [
      'repl-dropped',
      {
        value: atEnd.dropped + atEnd.expired,
        details: {
          atEnd,
          afterWindow: peerTotals(run.peersAfterWindow),
          // Per link (node→peer), after convergence with renewals running: tasks sent per second.
          linkTasksPerSecondAtEnd: linkRates(run.nodes, run.peersAtEnd, run.peersAfterCheck, LINK_CHECK_MS / 1000),
          byNode: byNode(run.peersAtEnd.map((r) => r.peers)),
        },
      },
    ],
    ['repl-node-cpu', { value: busiest, details: { coresByNode: byNode(run.cpu.map(round2)), benchProcessCores: round2(run.benchCores) } }],
    [
      'repl-node-rss',
      {
        value: Math.max(...rss),
        details: {
          rssMiBByNode: byNode(rss.map(round2)),
          peakRssMiBByNode: byNode(run.memory.map((m) => round2(m.peakRss / MiB))),
          heapUsedMiBByNode: byNode(run.memory.map((m) => round2(m.node.heapUsed / MiB))),
        },
      },
    ],
  ]);
}

/** Tasks sent per second on every link between two /peers reports, keyed "a→127.0.0.1:port". */
function linkRates(nodes: readonly ClusterNode[], before: readonly PeersReport[], after: readonly PeersReport[], seconds: number): Record<string, number> {
  const rates: Record<string, number> = {};
  nodes.forEach((node, k) => {
    for (const link of after[k]!.peers) {
      const earlier = before[k]!.peers.find((p) => p.peer === link.peer)?.tasksSent ?? 0;
      rates[`${node.name}→${link.peer}`] = Math.round((link.tasksSent - earlier) / seconds);
    }
  });
  return rates;
}

// --- the lag histogram --------------------------------------------------------------------

const BUCKET_LINE = /^roster_replication_lag_seconds_bucket\{[^}]*\ble="([^"]+)"[^}]*\} (\S+)$/gm;

/** The node's lag histogram (cumulative counts by bucket bound, all actions) from its /metrics. */
async function lagBuckets(node: ClusterNode): Promise<Buckets> {
  const res = await httpGet(node, '/metrics');
  const text = await res.text();
  const buckets = new Map<number, number>();
  for (const [, le, count] of text.matchAll(BUCKET_LINE)) {
    const bound = le === '+Inf' ? Infinity : Number(le);
    buckets.set(bound, (buckets.get(bound) ?? 0) + Number(count));
  }
  // A labelled histogram has no series until its first observation: that is zero counts, not an error.
  if (!text.includes('# TYPE roster_replication_lag_seconds histogram')) {
    throw new Error(`node ${node.name}: no roster_replication_lag_seconds histogram in /metrics`);
  }
  return new Map([...buckets].sort(([x], [y]) => x - y));
}

function subtractBuckets(after: Buckets, before: Buckets): Buckets {
  return new Map([...after].map(([le, count]) => [le, count - (before.get(le) ?? 0)]));
}

function addBuckets(x: Buckets, y: Buckets): Buckets {
  const bounds = [...new Set([...x.keys(), ...y.keys()])].sort((a, b) => a - b);
  return new Map(bounds.map((le) => [le, (x.get(le) ?? 0) + (y.get(le) ?? 0)]));
}

function total(buckets: Buckets): number {
  return buckets.get(Infinity) ?? 0;
}

function countAtMost(buckets: Buckets, bound: number): number {
  return buckets.get(bound) ?? Number.NaN;
}

/**
 * The q-quantile of a cumulative histogram, interpolated linearly within the bucket it falls
 * in (as Prometheus' histogram_quantile does; the first bucket starts at 0). A quantile in the
 * +Inf bucket is reported as the highest finite bound.
 */
export function bucketQuantile(buckets: Buckets, q: number): number {
  const count = total(buckets);
  if (count === 0) return Number.NaN;
  const rank = q * count;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [le, cumulative] of buckets) {
    if (cumulative >= rank) {
      if (le === Infinity) return lowerBound;
      return lowerBound + ((le - lowerBound) * (rank - lowerCount)) / Math.max(1, cumulative - lowerCount);
    }
    lowerBound = le;
    lowerCount = cumulative;
  }
  return lowerBound;
}

/** The q-quantile of samples, interpolated between the closest ranks. */
function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((x, y) => x - y);
  const position = q * (sorted.length - 1);
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low);
}

// --- plumbing ------------------------------------------------------------------------------

function httpGet(node: ClusterNode, path: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${node.httpPort}${path}`, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
}

async function peersReport(node: ClusterNode): Promise<PeersReport> {
  const res = await httpGet(node, '/peers');
  if (!res.ok) throw new Error(`node ${node.name}: /peers answered ${res.status}`);
  return (await res.json()) as PeersReport;
}

/** Polls `check` every 50 ms until it is true; throws after `timeoutMs` (a failing check counts as false). */
async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(50);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves with `promise`, or after `ms` — rejecting with `message` when one is given. */
async function withTimeout<T>(promise: Promise<T>, ms: number, message?: string): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve, reject) => {
    timer = setTimeout(() => (message === undefined ? resolve(undefined) : reject(new Error(message))), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Undo steps, run newest first, each bounded, all attempted even when some fail. */
class Cleanup {
  readonly #steps: { name: string; run: () => Promise<void> }[] = [];

  add(name: string, run: () => Promise<void>): void {
    this.#steps.push({ name, run });
  }

  async run(): Promise<void> {
    for (const step of this.#steps.reverse()) {
      try {
        await withTimeout(step.run(), CLEANUP_STEP_MS, `clean-up step "${step.name}" took over ${CLEANUP_STEP_MS} ms`);
      } catch (err) {
        process.stderr.write(`replication bench: ${errorMessage(err)}\n`);
      }
    }
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

function round4(n: number): number {
  return Math.round(n * 10_000) / 10_000;
}
