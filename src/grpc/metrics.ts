import { status } from '@grpc/grpc-js';
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { STATUSES, type RegistryApi, type RegistryStats } from '../core/types.js';
import type { RpcObserver } from './server.js';

/**
 * A node's Prometheus metrics in their own prom-client registry (not the global one, so
 * several nodes can live in one process). Other layers add their series to `registry`.
 */
export interface Metrics {
  readonly registry: Registry;
  /** Feeds the RPC series; pass it to the gRPC server. */
  readonly observer: RpcObserver;
  /** The text exposition of every series, for GET /metrics. */
  render(): Promise<string>;
}

const RPC_SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What `roster_build_info` reports. */
export interface BuildInfo {
  readonly version: string;
}

/**
 * Registry gauges are read from `registry.stats()` at scrape time, never stale. Names follow
 * the Prometheus conventions: counters end in `_total`, units are in the name, and no two
 * series say the same thing (the registry size is the sum of `roster_instances`).
 */
export function createMetrics(registry: RegistryApi, build: BuildInfo = { version: 'unknown' }): Metrics {
  const register = new Registry();
  collectDefaultMetrics({ register });
  new Gauge({
    name: 'roster_build_info',
    help: 'Always 1; the labels say which Roster and which Node.js are running.',
    labelNames: ['version', 'nodejs'],
    registers: [register],
  }).set({ version: build.version, nodejs: process.version }, 1);

  const fromStats = (name: string, help: string, read: (stats: RegistryStats) => number): void => {
    new Gauge({
      name,
      help,
      registers: [register],
      collect() {
        this.set(read(registry.stats()));
      },
    });
  };
  new Gauge({
    name: 'roster_instances',
    help: 'Registered instances by effective status.',
    labelNames: ['status'],
    registers: [register],
    collect() {
      const { byStatus } = registry.stats();
      for (const s of STATUSES) this.set({ status: s }, byStatus[s]);
    },
  });
  fromStats('roster_renewals_last_minute', 'Lease renewals and registrations seen over the sliding last minute.', (s) => s.renewalsLastMinute);
  fromStats('roster_expected_renewals_last_minute', 'Renewals the registered instances should have sent over the sliding last minute (each since it registered).', (s) => s.expectedRenewalsPerMinute);
  fromStats('roster_lapsed_instances', 'Expired instances still registered plus those evicted in the last minute.', (s) => s.lapsedInstances);
  fromStats('roster_self_preservation_active', '1 while eviction is paused by self-preservation (a mass lapse of renewals).', (s) => (s.selfPreservation ? 1 : 0));
  fromStats('roster_registry_revision', "This node's registry revision.", (s) => s.revision);
  new Counter({
    name: 'roster_evictions_total',
    help: 'Instances evicted for an expired lease.',
    registers: [register],
    collect() {
      this.reset();
      this.inc(registry.stats().evictionsTotal);
    },
  });
  fromStats(
    'roster_leases_held_for_unreachable_peers',
    'Expired leases not evicted because their renewals come through a peer this node cannot hear from (a one-way cut).',
    (s) => s.heldForUnreachablePeers,
  );
  fromStats('roster_unreachable_peers', 'Peers that replicated to this node and whose incoming stream is closed now.', (s) => s.unreachablePeers);
  fromStats('roster_metadata_bytes', 'Metadata keys and values of all instances, as counted against the metadata limit.', (s) => s.metadataBytes);
  new Counter({
    name: 'roster_capacity_refusals_total',
    help: 'Client writes refused RESOURCE_EXHAUSTED at a capacity limit, by limit.',
    labelNames: ['limit'],
    registers: [register],
    collect() {
      this.reset();
      for (const [limit, n] of Object.entries(registry.stats().capacityRefusals)) this.inc({ limit }, n);
    },
  });

  // Each call's series are found once per method and counted here, handed to prom-client at
  // scrape time: its `inc` and `observe` build a label key (and a result object) on every call
  // even on a found series, ~0.5 µs of a unary call's CPU.
  const byMethod = new Map<string, { duration: HistogramSeries; requests: number[] }>();
  new Counter({
    name: 'roster_rpc_requests_total',
    help: 'RPCs handled, by method and gRPC status code.',
    labelNames: ['method', 'code'],
    registers: [register],
    collect() {
      this.reset();
      for (const [method, { requests }] of byMethod) {
        // Indexed by status code: the codes never seen are holes.
        for (let code = 0; code < requests.length; code++) {
          const n = requests[code];
          if (n !== undefined) this.inc({ method, code: status[code] ?? String(code) }, n);
        }
      }
    },
  });
  const openStreams = new Gauge({
    name: 'roster_rpc_open_streams',
    help: 'Streaming calls open now, by method (Watch: watchers; Heartbeats: heartbeat streams; Replicate: peers).',
    labelNames: ['method'],
    registers: [register],
  });
  const duration = new LabeledHistogram({
    name: 'roster_rpc_duration_seconds',
    help: 'RPC latency (whole stream lifetime for streaming methods).',
    label: 'method',
    buckets: RPC_SECONDS_BUCKETS,
    registers: [register],
  });

  const fullReads = new Counter({
    name: 'roster_full_reads_total',
    help: 'ListApplications reads served, by answer encoding (gzip when the client asked) and whether the encoded snapshot was already kept (hit) or encoded for it (miss).',
    labelNames: ['encoding', 'cache'],
    registers: [register],
  });

  return {
    registry: register,
    observer: {
      observe(method, code, seconds) {
        let children = byMethod.get(method);
        if (children === undefined) {
          children = { duration: duration.series(method), requests: [] };
          byMethod.set(method, children);
        }
        children.requests[code] = (children.requests[code] ?? 0) + 1;
        children.duration.observe(seconds);
      },
      streamOpened(method) {
        openStreams.inc({ method });
      },
      streamClosed(method) {
        openStreams.dec({ method });
      },
      fullRead(encoding, cached) {
        fullReads.inc({ encoding, cache: cached ? 'hit' : 'miss' });
      },
    },
    render: () => register.metrics(),
  };
}

/** One series of a {@link LabeledHistogram}: a count per bucket (not cumulative), their sum and their count. */
class HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  readonly #bounds: readonly number[];

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    if (i < bounds.length) this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

/**
 * A histogram with one label, for series observed on every call or task: a caller finds its
 * series once and counts into plain numbers, where a prom-client Histogram's `observe` checks
 * and hashes the labels of every observation (~0.5 µs). prom-client's registries take any
 * object with a name, a help text, a type and `get()`; the exposition is a prom-client
 * Histogram's, sample for sample (test/grpc/labeled-histogram.test.ts).
 */
export class LabeledHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #label: string;
  readonly #bounds: readonly number[];
  readonly #series = new Map<string, HistogramSeries>();

  constructor(options: { name: string; help: string; label: string; buckets: readonly number[]; registers: readonly Registry[] }) {
    this.name = options.name;
    this.help = options.help;
    this.#label = options.label;
    this.#bounds = options.buckets;
    for (const registry of options.registers) registry.registerMetric(this as unknown as Metric);
  }

  /** The series of one label value, created at zero the first time. */
  series(value: string): HistogramSeries {
    let series = this.#series.get(value);
    if (series === undefined) this.#series.set(value, (series = new HistogramSeries(this.#bounds)));
    return series;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: Sample[] } {
    const values: Sample[] = [];
    const { name } = this;
    for (const [value, series] of this.#series) {
      const labels = { [this.#label]: value };
      let cumulative = 0;
      this.#bounds.forEach((le, i) => {
        cumulative += series.counts[i]!;
        values.push({ metricName: `${name}_bucket`, labels: { le, ...labels }, value: cumulative });
      });
      values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf', ...labels }, value: series.count });
      values.push({ metricName: `${name}_sum`, labels, value: series.sum });
      values.push({ metricName: `${name}_count`, labels, value: series.count });
    }
    return { name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** What a registry's `resetMetrics()` calls: every series back to zero (callers keep theirs). */
  reset(): void {
    for (const series of this.#series.values()) {
      series.counts.fill(0);
      series.sum = 0;
      series.count = 0;
    }
  }
}

interface Sample {
  readonly metricName: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
}
