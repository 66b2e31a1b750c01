import assert from 'node:assert/strict';
import { setImmediate as nextTick } from 'node:timers/promises';
import { describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { ReplicationServiceClient, ReplicationServiceService, type ReplicationServiceServer } from '../../src/gen/roster/v1/replication_service.js';
import { bufCurl, call, protoInstance, readAll, rejectsWith, StreamReader, WAIT_MS, withHarness } from './helpers.js';

const HealthClient = grpc.makeClientConstructor(healthService as grpc.ServiceDefinition, 'grpc.health.v1.Health');

interface HealthCheckResponse {
  status: string;
}

function healthOf(address: string) {
  const client = new HealthClient(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    check: (req: { service: string }, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: (e: grpc.ServiceError | null, r: HealthCheckResponse) => void) => grpc.ClientUnaryCall;
    watch: (req: { service: string }, opts: Partial<grpc.CallOptions>) => grpc.ClientReadableStream<HealthCheckResponse>;
  };
  const check = async (service: string) => (await call(client.check.bind(client), { service })).status;
  return { client, check };
}

describe('health', () => {
  test('overall and RegistryService statuses follow readiness, setServing and the serving option', async () => {
    let ready = false;
    let serving = true;
    await withHarness({ ready: () => ready, serving: () => serving }, async (h) => {
      const { client, check } = healthOf(h.address);
      try {
        assert.equal(await check(''), 'NOT_SERVING');
        assert.equal(await check('roster.v1.RegistryService'), 'NOT_SERVING');
        ready = true;
        h.server.setServing(true);
        assert.equal(await check(''), 'SERVING');
        assert.equal(await check('roster.v1.RegistryService'), 'SERVING');
        h.server.setServing(false);
        assert.equal(await check(''), 'NOT_SERVING');
        h.server.setServing(true);
        serving = false;
        h.server.setServing(true);
        assert.equal(await check(''), 'NOT_SERVING');
        serving = true;
        h.server.setServing(true);
        assert.equal(await check(''), 'SERVING');
        await rejectsWith(check('no.such.Service'), grpc.status.NOT_FOUND);
      } finally {
        client.close();
      }
    });
  });

  test('shutdown turns health NOT_SERVING before the server goes', () =>
    withHarness({}, async (h) => {
      const { client } = healthOf(h.address);
      const reader = new StreamReader(client.watch({ service: '' }, { deadline: Date.now() + WAIT_MS }));
      try {
        assert.equal((await reader.next()).status, 'SERVING');
        const stopping = h.server.shutdown(200);
        assert.equal((await reader.next()).status, 'NOT_SERVING');
        await stopping;
      } finally {
        client.close();
      }
    }));
});

describe('reflection and buf curl', () => {
  test('lists the served services', () =>
    withHarness({}, async (h) => {
      const res = await bufCurl(['--list-services', `http://${h.address}`]);
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(res.stdout.trim().split('\n').sort(), ['grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection', 'roster.v1.RegistryService']);
    }));

  test('Register then GetInstance round-trip every field, metadata map included', () =>
    withHarness({}, async (h) => {
      const instance = {
        app: 'Billing',
        instanceId: 'i-9',
        hostName: 'billing-9.example.internal',
        ipAddr: '10.1.1.9',
        port: { number: 8080, enabled: true },
        securePort: { number: 8443, enabled: true },
        status: 'INSTANCE_STATUS_STARTING',
        vipAddress: 'billing,billing-v2',
        secureVipAddress: 'billing-tls',
        zone: 'eu-west-1b',
        region: 'eu-west-1',
        metadata: { version: '2.0.1', 'team.name': 'payments' },
        homePageUrl: 'http://billing-9:8080/',
        statusPageUrl: 'http://billing-9:8080/status',
        healthCheckUrl: 'http://billing-9:8080/health',
        lease: { renewalIntervalSecs: 15, durationSecs: 45 },
        lastDirtyTimestamp: '1700000000000',
      };
      const registered = await bufCurl([`http://${h.address}/roster.v1.RegistryService/Register`, '-d', JSON.stringify({ instance })]);
      assert.equal(registered.code, 0, registered.stderr);
      const got = await bufCurl([`http://${h.address}/roster.v1.RegistryService/GetInstance`, '-d', JSON.stringify({ app: 'BILLING', instance_id: 'i-9' })]);
      assert.equal(got.code, 0, got.stderr);
      const wall = String(h.clock.wallNow());
      assert.deepEqual(JSON.parse(got.stdout), {
        instance: {
          ...instance,
          app: 'billing',
          lease: { renewalIntervalSecs: 15, durationSecs: 45, registrationTimestamp: wall, lastRenewalTimestamp: wall },
          lastUpdatedTimestamp: wall,
        },
        revision: '1',
      });
      assert.deepEqual(JSON.parse(got.stdout).instance, JSON.parse(registered.stdout).instance);
    }));

  test('errors come back as exit codes of 8 x the gRPC code', () =>
    withHarness({}, async (h) => {
      const bad = await bufCurl([`http://${h.address}/roster.v1.RegistryService/Register`, '-d', '{"instance": {"app": "", "instanceId": "x"}}']);
      assert.equal(bad.code, 8 * grpc.status.INVALID_ARGUMENT);
      assert.match(bad.stderr, /instance\.app/);
      const missing = await bufCurl([`http://${h.address}/roster.v1.RegistryService/GetInstance`, '-d', '{"app": "a", "instanceId": "b"}']);
      assert.equal(missing.code, 8 * grpc.status.NOT_FOUND);
      assert.equal(h.registry.revision, 0);
    }));

  test('health is reachable through reflection too', () =>
    withHarness({}, async (h) => {
      const res = await bufCurl([`http://${h.address}/grpc.health.v1.Health/Check`, '-d', '{"service": "roster.v1.RegistryService"}']);
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(JSON.parse(res.stdout), { status: 'SERVING' });
    }));

  test('extra services are served and listed', async () => {
    const replication: ReplicationServiceServer = {
      replicate: (stream) => stream.end(),
      snapshot: (stream) => stream.end(),
      digest: (_call, callback) => callback(null, { nodeId: 'node-a', apps: [] }),
    };
    await withHarness({ extraServices: [{ definition: ReplicationServiceService, implementation: replication }] }, async (h) => {
      const listed = await bufCurl(['--list-services', `http://${h.address}`]);
      assert.deepEqual(listed.stdout.trim().split('\n').sort(), [
        'grpc.health.v1.Health',
        'grpc.reflection.v1.ServerReflection',
        'grpc.reflection.v1alpha.ServerReflection',
        'roster.v1.RegistryService',
        'roster.v1.ReplicationService',
      ]);
      const client = new ReplicationServiceClient(h.address, grpc.credentials.createInsecure());
      try {
        const digest = await call(client.digest.bind(client), {});
        assert.equal(digest.nodeId, 'node-a');
      } finally {
        client.close();
      }
    });
  });
});

describe('observer', () => {
  test('sees every call once with its method, final code and latency, cancelled streams included', async () => {
    const seen: Array<{ method: string; code: grpc.status; seconds: number }> = [];
    const observer = { observe: (method: string, code: grpc.status, seconds: number) => seen.push({ method, code, seconds }) };
    await withHarness({ observer }, async (h) => {
      await call(h.client.register.bind(h.client), { instance: protoInstance({ app: 'a', instanceId: 'i' }) });
      await rejectsWith(call(h.client.getInstance.bind(h.client), { app: 'a', instanceId: 'nope' }), grpc.status.NOT_FOUND);
      await readAll(h.client.listApplications({ chunkSize: 0 }));
      const watch = new StreamReader(h.client.watch({ app: '', vip: '', nodeId: '' }));
      await watch.next();
      watch.stream.cancel();
      for (let i = 0; i < 10_000 && seen.length < 4; i++) await nextTick();
      const path = (m: string) => `/roster.v1.RegistryService/${m}`;
      assert.deepEqual(
        seen.map(({ method, code }) => [method, code]),
        [
          [path('Register'), grpc.status.OK],
          [path('GetInstance'), grpc.status.NOT_FOUND],
          [path('ListApplications'), grpc.status.OK],
          [path('Watch'), grpc.status.CANCELLED],
        ],
      );
      assert.ok(seen.every((s) => s.seconds >= 0 && s.seconds < WAIT_MS / 1000));
    });
  });
});
