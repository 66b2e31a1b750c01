import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { FakeClock } from '../../src/core/clock.js';
import { Registry } from '../../src/core/registry.js';
import { adminRoutes, type AdminHealth } from '../../src/admin/routes.js';
import { startHttpServer } from '../../src/http/server.js';
import { createMetrics } from '../../src/grpc/metrics.js';
import { call, protoInstance, registration, rejectsWith, silentLogger, startHarness, WAIT_MS } from '../grpc/helpers.js';

async function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string | null; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, signal: AbortSignal.timeout(WAIT_MS) });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

function healthFrom(registry: Registry, state: { live: boolean; ready: boolean }): () => AdminHealth {
  return () => {
    const stats = registry.stats();
    return { ...state, details: { instances: stats.size, selfPreservation: stats.selfPreservation } };
  };
}

describe('admin HTTP', () => {
  test('a mass lapse (30 % of 1,000 stop) shows in /metrics and /healthz while eviction is paused, and clears when renewals recover', async () => {
    const clock = new FakeClock();
    const registry = new Registry({ clock });
    registry.start();
    const ids = Array.from({ length: 1000 }, (_, i) => `i-${i}`);
    for (const id of ids) registry.register(registration({ instanceId: id }));
    const renew = (alive: string[], seconds: number): void => {
      for (let t = 0; t < seconds; t += 30) {
        clock.advance(30_000);
        for (const id of alive) registry.heartbeat('billing', id);
      }
    };
    const admin = await startHttpServer({ port: 0, logger: silentLogger(), mounts: [adminRoutes({ metrics: createMetrics(registry), health: healthFrom(registry, { live: true, ready: true }) })] });
    try {
      renew(ids, 60);
      assert.match((await get(admin.port, '/metrics')).body, /^roster_self_preservation_active 0$/m);
      renew(ids.slice(300), 180); // 30 % go silent at once
      const held = (await get(admin.port, '/metrics')).body;
      assert.match(held, /^roster_self_preservation_active 1$/m);
      assert.match(held, /^roster_lapsed_instances 300$/m);
      assert.equal(JSON.parse((await get(admin.port, '/healthz')).body).selfPreservation, true);
      assert.equal(registry.stats().size, 1000, 'nothing evicted meanwhile');
      for (const id of ids.slice(0, 300)) registry.register(registration({ instanceId: id, lastDirtyTimestamp: clock.wallNow() }));
      renew(ids, 120);
      assert.match((await get(admin.port, '/metrics')).body, /^roster_self_preservation_active 0$/m);
      assert.equal(JSON.parse((await get(admin.port, '/healthz')).body).selfPreservation, false);
    } finally {
      registry.stop();
      await admin.close();
    }
  });

  test('/healthz, /readyz and /metrics; 404 and 405 otherwise', async () => {
    const registry = new Registry({ clock: new FakeClock() });
    registry.register(registration({ instanceId: 'a' }));
    registry.register(registration({ instanceId: 'b', status: 'DOWN' }));
    const state = { live: true, ready: false };
    const metrics = createMetrics(registry);
    const admin = await startHttpServer({ port: 0, logger: silentLogger(), mounts: [adminRoutes({ metrics, health: healthFrom(registry, state) })] });
    try {
      const healthz = await get(admin.port, '/healthz');
      assert.equal(healthz.status, 200);
      assert.equal(healthz.type, 'application/json');
      assert.deepEqual(JSON.parse(healthz.body), { status: 'ok', instances: 2, selfPreservation: false });

      const notReady = await get(admin.port, '/readyz');
      assert.equal(notReady.status, 503);
      assert.deepEqual(JSON.parse(notReady.body), { status: 'not ready', instances: 2, selfPreservation: false });
      state.ready = true;
      const ready = await get(admin.port, '/readyz?verbose=1');
      assert.equal(ready.status, 200);
      assert.deepEqual(JSON.parse(ready.body), { status: 'ready', instances: 2, selfPreservation: false });
      state.live = false;
      assert.equal((await get(admin.port, '/healthz')).status, 503);

      const scrape = await get(admin.port, '/metrics');
      assert.equal(scrape.status, 200);
      assert.equal(scrape.type, metrics.registry.contentType);
      assert.match(scrape.type ?? '', /^text\/plain; version=0\.0\.4/);
      for (const line of [
        'roster_instances{status="UP"} 1',
        'roster_instances{status="DOWN"} 1',
        'roster_instances{status="OUT_OF_SERVICE"} 0',
        'roster_registry_revision 2',
        'roster_renewals_last_minute 2',
        'roster_expected_renewals_last_minute 0',
        'roster_self_preservation_active 0',
        'roster_evictions_total 0',
        '# TYPE roster_evictions_total counter',
      ]) {
        assert.ok(scrape.body.split('\n').includes(line), `missing "${line}"`);
      }
      assert.match(scrape.body, /^process_cpu_user_seconds_total \d/m, 'default process metrics');
      registry.cancel('billing', 'a');
      assert.match((await get(admin.port, '/metrics')).body, /^roster_instances\{status="UP"\} 0$/m, 'read at scrape time');

      const head = await get(admin.port, '/metrics', 'HEAD');
      assert.equal(head.status, 200);
      assert.equal(head.body, '');
      assert.equal((await get(admin.port, '/nope')).status, 404);
      assert.equal((await get(admin.port, '/metrics', 'POST')).status, 405);
    } finally {
      await admin.close();
    }
  });

  test('RPC series come from the server observer', async () => {
    const clock = new FakeClock();
    const registry = new Registry({ clock });
    const metrics = createMetrics(registry);
    const harness = await startHarness({ prebuilt: { clock, registry }, observer: metrics.observer });
    const admin = await startHttpServer({ port: 0, logger: silentLogger(), mounts: [adminRoutes({ metrics, health: healthFrom(registry, { live: true, ready: true }) })] });
    try {
      const { client } = harness;
      await call(client.register.bind(client), { instance: protoInstance() });
      await call(client.register.bind(client), { instance: protoInstance({ instanceId: 'i-2' }) });
      await rejectsWith(call(client.getInstance.bind(client), { app: 'billing', instanceId: 'nope' }), grpc.status.NOT_FOUND);
      const body = (await get(admin.port, '/metrics')).body;
      assert.match(body, /^roster_instances\{status="UP"\} 2$/m);
      assert.match(body, /^roster_rpc_requests_total\{method="\/roster\.v1\.RegistryService\/Register",code="OK"\} 2$/m);
      assert.match(body, /^roster_rpc_requests_total\{method="\/roster\.v1\.RegistryService\/GetInstance",code="NOT_FOUND"\} 1$/m);
      assert.match(body, /^roster_rpc_duration_seconds_count\{method="\/roster\.v1\.RegistryService\/Register"\} 2$/m);
    } finally {
      await admin.close();
      await harness.close();
    }
  });
});
