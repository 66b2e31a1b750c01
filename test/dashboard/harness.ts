import { FakeClock } from '../../src/core/clock.js';
import { Registry, type RegistryOptions } from '../../src/core/registry.js';
import { createDashboard, type Dashboard, type DashboardOptions } from '../../src/dashboard/dashboard.js';
import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import type { RegistryServiceClient } from '../../src/gen/roster/v1/registry_service.js';
import { silentLogger, startHarness, WAIT_MS, type Harness } from '../grpc/helpers.js';

/** An in-process node on one fake clock: registry, gRPC server (and client), and the dashboard on HTTP. */
export interface DashboardNode {
  readonly clock: FakeClock;
  readonly registry: Registry;
  readonly grpc: Harness;
  readonly client: RegistryServiceClient;
  readonly dashboard: Dashboard;
  readonly http: HttpServer;
  /** http://127.0.0.1:PORT */
  readonly base: string;
  close(): Promise<void>;
}

export async function startDashboardNode(options: { registry?: Partial<RegistryOptions>; dashboard?: Partial<Omit<DashboardOptions, 'registry' | 'clock' | 'logger'>> } = {}): Promise<DashboardNode> {
  const clock = new FakeClock();
  const registry = new Registry({ clock, ...options.registry });
  registry.start();
  const grpc = await startHarness({ prebuilt: { clock, registry } });
  const dashboard = createDashboard({ registry, clock, logger: silentLogger(), nodeId: 'node-under-test', ...options.dashboard });
  const http = await startHttpServer({ port: 0, logger: silentLogger(), mounts: [dashboard.mount] });
  return {
    clock,
    registry,
    grpc,
    client: grpc.client,
    dashboard,
    http,
    base: `http://127.0.0.1:${http.port}`,
    async close() {
      dashboard.close();
      await http.close();
      await grpc.close();
      registry.stop();
    },
  };
}

/** A request to the node's HTTP port; the body parsed as JSON when it is JSON. */
export async function request(
  base: string,
  path: string,
  init: { method?: string; json?: unknown; body?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { ...init.headers };
  let body = init.body;
  if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${base}${path}`, { method: init.method ?? 'GET', headers, body, signal: AbortSignal.timeout(WAIT_MS) });
  const text = await res.text();
  const isJson = (res.headers.get('content-type') ?? '').startsWith('application/json');
  return { status: res.status, body: isJson ? JSON.parse(text) : text, headers: res.headers };
}
