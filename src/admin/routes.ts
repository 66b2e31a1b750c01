import type { HttpMount } from '../http/server.js';
import { send, sendJson } from '../http/server.js';
import type { Metrics } from '../grpc/metrics.js';

/** A node's health as the caller sees it; `details` must carry self-preservation and registry size. */
export interface AdminHealth {
  readonly live: boolean;
  readonly ready: boolean;
  readonly details: Record<string, unknown>;
}

export interface AdminRoutesOptions {
  readonly metrics: Metrics;
  readonly health: () => AdminHealth;
  /** More read-only JSON endpoints by path (e.g. /peers). */
  readonly json?: Readonly<Record<string, () => unknown>>;
}

/**
 * The operational endpoints: /healthz (liveness), /readyz (503 until the node may serve
 * reads), /metrics (Prometheus text) and extra read-only JSON endpoints such as /peers.
 */
export function adminRoutes(options: AdminRoutesOptions): HttpMount {
  return (router) => {
    const health = (path: '/healthz' | '/readyz'): void => {
      router.on(['GET', 'HEAD'], path, (_req, res) => {
        const { live, ready, details } = options.health();
        const ok = path === '/healthz' ? live : ready;
        const state = path === '/healthz' ? (live ? 'ok' : 'unhealthy') : ready ? 'ready' : 'not ready';
        sendJson(res, ok ? 200 : 503, { status: state, ...details });
      });
    };
    health('/healthz');
    health('/readyz');
    router.on(['GET', 'HEAD'], '/metrics', async (_req, res) => {
      send(res, 200, options.metrics.registry.contentType, await options.metrics.render());
    });
    for (const [path, value] of Object.entries(options.json ?? {})) {
      router.on(['GET', 'HEAD'], path, (_req, res) => sendJson(res, 200, value()));
    }
  };
}
