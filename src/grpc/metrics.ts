import { status } from '@grpc/grpc-js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
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
  fromStats(
    'roster_expected_renewals_last_minute',
    'Renewals the registered instances should have sent over the sliding last minute (each since it registered).',
    (s) => s.expectedRenewalsPerMinute,
  );
  fromStats('roster_lapsed_instances', 'Expired instances still registered plus those evicted in the last minute.', (s) => s.lapsedInstances);
  fromStats('roster_self_preservation_active', '1 while eviction is paused by self-preservation (a mass lapse of renewals).', (s) =>
    s.selfPreservation ? 1 : 0,
  );
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

  // Each call's duration series found once per method: prom-client otherwise rebuilds the
  // label key of every observation, which showed in the unary calls' profile. Request counts are
  // plain numbers per method and code, handed to prom-client at scrape time: its `inc` builds a
  // key and a result object per call even on a found series.
  const byMethod = new Map<string, { duration: Histogram.Internal<'method'>; requests: number[] }>();
  new Counter({
    name: 'roster_rpc_requests_total',
    help: 'RPCs handled, by method and gRPC status code.',
    labelNames: ['method', 'code'],
    registers: [register],
    collect() {
      this.reset();
      for (const [method, { requests }] of byMethod) {
        requests.forEach((n, code) => this.inc({ method, code: status[code] ?? String(code) }, n));
      }
    },
  });
  const openStreams = new Gauge({
    name: 'roster_rpc_open_streams',
    help: 'Streaming calls open now, by method (Watch: watchers; Heartbeats: heartbeat streams; Replicate: peers).',
    labelNames: ['method'],
    registers: [register],
  });
  const duration = new Histogram({
    name: 'roster_rpc_duration_seconds',
    help: 'RPC latency (whole stream lifetime for streaming methods).',
    labelNames: ['method'],
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
          children = { duration: duration.labels({ method }), requests: [] };
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
