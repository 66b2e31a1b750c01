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

/** Registry gauges are read from `registry.stats()` at scrape time, never stale. */
export function createMetrics(registry: RegistryApi): Metrics {
  const register = new Registry();
  collectDefaultMetrics({ register });

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
  fromStats('roster_registry_size', 'Registered instances.', (s) => s.size);
  fromStats('roster_renewals_last_minute', 'Lease renewals seen in the last full minute.', (s) => s.renewalsLastMinute);
  fromStats('roster_expected_renewals_per_minute', 'Renewals per minute the registered instances should send.', (s) => s.expectedRenewalsPerMinute);
  fromStats('roster_self_preservation_active', '1 while eviction is paused because renewals fell below the threshold.', (s) =>
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

  const requests = new Counter({
    name: 'roster_rpc_requests_total',
    help: 'RPCs handled, by method and gRPC status code.',
    labelNames: ['method', 'code'],
    registers: [register],
  });
  const duration = new Histogram({
    name: 'roster_rpc_duration_seconds',
    help: 'RPC latency (whole stream lifetime for streaming methods).',
    labelNames: ['method'],
    buckets: RPC_SECONDS_BUCKETS,
    registers: [register],
  });

  return {
    registry: register,
    observer: {
      observe(method, code, seconds) {
        requests.inc({ method, code: status[code] ?? String(code) });
        duration.observe({ method }, seconds);
      },
    },
    render: () => register.metrics(),
  };
}
