import { Counter, Gauge } from 'prom-client';
import type { ConnectionStats } from './connections.js';
import type { RefusalReason } from './guard.js';
import type { Metrics } from './metrics.js';

/** What the security series are fed: refusals as they happen, connection counters at scrape time. */
export interface SecurityMetrics {
  /** Pass to the gRPC server's `onRefused`. */
  readonly grpcRefused: (method: string, reason: RefusalReason) => void;
  /** Pass to the HTTP server's `onRefused`. */
  readonly httpRefused: (method: string, code: 401 | 403) => void;
}

/**
 * Refused calls and requests (by reason, never by credential), open connections and calls,
 * and what the connection caps refused or closed. `stats` is read at scrape time.
 */
export function addSecurityMetrics(metrics: Metrics, stats: () => ConnectionStats | undefined): SecurityMetrics {
  const registers = [metrics.registry];
  const refusals = new Counter({
    name: 'roster_auth_refusals_total',
    help: 'Calls and requests refused for a missing or unknown credential (unauthenticated) or missing role (permission_denied).',
    labelNames: ['surface', 'method', 'reason'],
    registers,
  });
  const callLimit = new Counter({
    name: 'roster_grpc_call_limit_refusals_total',
    help: 'gRPC calls refused RESOURCE_EXHAUSTED by the concurrent call caps, by method.',
    labelNames: ['method'],
    registers,
  });
  const gauge = (name: string, help: string, read: (s: ConnectionStats) => number): void => {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const s = stats();
        if (s) this.set(read(s));
      },
    });
  };
  const monotonic = (name: string, help: string, labelName: string, read: (s: ConnectionStats) => Record<string, number>): void => {
    new Counter({
      name,
      help,
      labelNames: [labelName],
      registers,
      collect() {
        const s = stats();
        if (!s) return;
        this.reset();
        for (const [label, value] of Object.entries(read(s))) this.inc({ [labelName]: label }, value);
      },
    });
  };
  gauge('roster_grpc_connections', 'Open gRPC connections.', (s) => s.connections);
  gauge('roster_grpc_calls_active', 'gRPC calls and streams in progress.', (s) => s.calls);
  monotonic('roster_grpc_connections_refused_total', 'gRPC connections closed at accept by a cap, by cap.', 'cap', (s) => ({
    total: s.refusedConnections.total,
    per_address: s.refusedConnections.perAddress,
  }));
  monotonic('roster_grpc_calls_refused_total', 'gRPC calls refused by a concurrent call cap, by cap.', 'cap', (s) => ({
    total: s.refusedCalls.total,
    per_connection: s.refusedCalls.perConnection,
  }));
  new Counter({
    name: 'roster_grpc_connections_idle_closed_total',
    help: 'gRPC connections closed after carrying no call for idleConnectionSecs.',
    registers,
    collect() {
      const s = stats();
      if (!s) return;
      this.reset();
      this.inc(s.idleClosed);
    },
  });
  return {
    grpcRefused: (method, reason) => {
      if (reason === 'call_limit') callLimit.inc({ method });
      else refusals.inc({ surface: 'grpc', method, reason });
    },
    httpRefused: (method, code) => refusals.inc({ surface: 'http', method, reason: code === 401 ? 'unauthenticated' : 'permission_denied' }),
  };
}
