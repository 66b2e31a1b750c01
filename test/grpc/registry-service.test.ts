import assert from 'node:assert/strict';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { InstanceStatus } from '../../src/gen/roster/v1/instance.js';
import type { HeartbeatsRequest, HeartbeatsResponse } from '../../src/gen/roster/v1/registry_service.js';
import { call, protoInstance, registration, rejectsWith, startHarness, StreamReader, WAIT_MS, type Harness, withHarness } from './helpers.js';

const { INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, UNAVAILABLE, OK } = grpc.status;

/** Asserts INVALID_ARGUMENT naming `field`, and that the registry did not change. */
async function refusesField(h: Harness, promise: Promise<unknown>, field: string): Promise<void> {
  const before = { revision: h.registry.revision, stats: h.registry.stats(), snapshot: h.registry.snapshot() };
  await rejectsWith(promise, INVALID_ARGUMENT, new RegExp(`^${field.replaceAll('.', '\\.')}: `));
  assert.equal(h.registry.revision, before.revision, 'nothing changed');
  assert.deepEqual(h.registry.snapshot(), before.snapshot, 'nothing changed');
}

describe('Register and GetInstance', () => {
  test('store every field; reads fill lease timestamps, lower-case the app and carry the revision', () =>
    withHarness({}, async ({ client, clock }) => {
      const sent = protoInstance();
      const registered = await call(client.register.bind(client), { instance: sent });
      assert.equal(registered.revision, 1);
      const got = await call(client.getInstance.bind(client), { app: 'BILLING', instanceId: 'i-1' });
      assert.equal(got.revision, 1);
      assert.deepEqual(got.instance, registered.instance);
      const wall = clock.wallNow();
      assert.deepEqual(got.instance, {
        ...sent,
        app: 'billing',
        overriddenStatus: InstanceStatus.INSTANCE_STATUS_UNSPECIFIED,
        lease: {
          renewalIntervalSecs: 10,
          durationSecs: 30,
          registrationTimestamp: wall,
          lastRenewalTimestamp: wall,
          evictionTimestamp: 0,
          serviceUpTimestamp: wall,
        },
        lastUpdatedTimestamp: wall,
      });
    }));

  test('defaults: status UNSPECIFIED is UP, no dirty timestamp takes node time, no lease takes 30/90', () =>
    withHarness({}, async ({ client, clock }) => {
      const res = await call(client.register.bind(client), {
        instance: protoInstance({ status: InstanceStatus.INSTANCE_STATUS_UNSPECIFIED, lastDirtyTimestamp: 0, lease: undefined }),
      });
      assert.equal(res.instance?.status, InstanceStatus.INSTANCE_STATUS_UP);
      assert.equal(res.instance?.lastDirtyTimestamp, clock.wallNow());
      assert.equal(res.instance?.lease?.renewalIntervalSecs, 30);
      assert.equal(res.instance?.lease?.durationSecs, 90);
    }));

  test('a newer stored record wins and the call still succeeds', () =>
    withHarness({}, async ({ client }) => {
      await call(client.register.bind(client), { instance: protoInstance({ lastDirtyTimestamp: 2_000, zone: 'new' }) });
      const res = await call(client.register.bind(client), { instance: protoInstance({ lastDirtyTimestamp: 1_000, zone: 'old' }) });
      assert.equal(res.instance?.zone, 'new');
      assert.equal(res.revision, 1);
    }));

  test('bad input is INVALID_ARGUMENT naming the field and changes nothing', () =>
    withHarness({}, async (h) => {
      const { client } = h;
      await call(client.register.bind(client), { instance: protoInstance({ instanceId: 'existing' }) });
      const register = (instance: Parameters<typeof protoInstance>[0] | undefined) => call(client.register.bind(client), { instance: instance === undefined ? undefined : protoInstance(instance) });
      await refusesField(h, register(undefined), 'instance');
      await refusesField(h, register({ app: '' }), 'instance.app');
      await refusesField(h, register({ app: 'no spaces' }), 'instance.app');
      await refusesField(h, register({ instanceId: '-x' }), 'instance.instance_id');
      await refusesField(h, register({ status: 77 as InstanceStatus }), 'instance.status');
      await refusesField(h, register({ port: { number: 70_000, enabled: true } }), 'instance.port.number');
      await refusesField(h, register({ securePort: { number: 0, enabled: true } }), 'instance.secure_port.number');
      await refusesField(h, register({ lease: { renewalIntervalSecs: 60, durationSecs: 30 } }), 'instance.lease.duration_secs');
      await refusesField(h, register({ lease: { renewalIntervalSecs: 301 } }), 'instance.lease.renewal_interval_secs');
      await refusesField(h, register({ metadata: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) }), 'instance.metadata');
      await refusesField(h, register({ hostName: 'has space' }), 'instance.host_name');
      await refusesField(h, register({ instanceId: 'existing', zone: 'x'.repeat(65), lastDirtyTimestamp: 9e12 }), 'instance.zone');
    }));

  test('GetInstance: NOT_FOUND for an unknown instance, INVALID_ARGUMENT for a bad name', () =>
    withHarness({}, async ({ client }) => {
      await rejectsWith(call(client.getInstance.bind(client), { app: 'billing', instanceId: 'nope' }), NOT_FOUND, /billing\/nope/);
      await rejectsWith(call(client.getInstance.bind(client), { app: 'bad app', instanceId: 'i' }), INVALID_ARGUMENT, /^app: /);
      await rejectsWith(call(client.getInstance.bind(client), { app: 'billing', instanceId: '' }), INVALID_ARGUMENT, /^instance_id: /);
    }));

  test('a request over 4 MiB is RESOURCE_EXHAUSTED and changes nothing', () =>
    withHarness({}, async ({ client, registry }) => {
      const huge = protoInstance({ homePageUrl: 'x'.repeat(4 * 1024 * 1024 + 1) });
      await rejectsWith(call(client.register.bind(client), { instance: huge }), RESOURCE_EXHAUSTED);
      assert.equal(registry.revision, 0);
      const ok = await call(client.register.bind(client), { instance: protoInstance() });
      assert.equal(ok.revision, 1, 'the channel still works');
    }));
});

describe('Heartbeat', () => {
  test('renews a live instance and returns its effective status', () =>
    withHarness({}, async ({ client, registry, clock }) => {
      registry.register(registration({ lastDirtyTimestamp: 5_000 }));
      clock.advance(10_000);
      const res = await call(client.heartbeat.bind(client), { app: 'Billing', instanceId: 'i-1', lastDirtyTimestamp: 5_000 });
      assert.equal(res.status, InstanceStatus.INSTANCE_STATUS_UP);
      assert.equal(registry.get('billing', 'i-1').lease.lastRenewalTimestamp, clock.wallNow());
      registry.setStatusOverride('billing', 'i-1', 'OUT_OF_SERVICE');
      const out = await call(client.heartbeat.bind(client), { app: 'billing', instanceId: 'i-1', lastDirtyTimestamp: 0 });
      assert.equal(out.status, InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE);
    }));

  test('NOT_FOUND when unknown, when the caller is newer, when expired and when the status is UNKNOWN', () =>
    withHarness({}, async ({ client, registry, clock }) => {
      const beat = (instanceId: string, lastDirtyTimestamp = 0) => call(client.heartbeat.bind(client), { app: 'billing', instanceId, lastDirtyTimestamp });
      await rejectsWith(beat('nope'), NOT_FOUND, /not registered/);
      registry.register(registration({ instanceId: 'a', lastDirtyTimestamp: 1_000 }));
      await rejectsWith(beat('a', 2_000), NOT_FOUND, /newer/);
      registry.register(registration({ instanceId: 'b', durationSecs: 30, renewalIntervalSecs: 10 }));
      clock.advance(31_000);
      await rejectsWith(beat('b'), NOT_FOUND, /expired/);
      registry.register(registration({ instanceId: 'c' }));
      registry.setStatusOverride('billing', 'c', 'OUT_OF_SERVICE');
      registry.clearStatusOverride('billing', 'c');
      await rejectsWith(beat('c'), NOT_FOUND, /UNKNOWN/);
    }));

  test('bad names are INVALID_ARGUMENT', () =>
    withHarness({}, async (h) => {
      await refusesField(h, call(h.client.heartbeat.bind(h.client), { app: '', instanceId: 'i', lastDirtyTimestamp: 0 }), 'app');
      await refusesField(h, call(h.client.heartbeat.bind(h.client), { app: 'a', instanceId: ' ', lastDirtyTimestamp: 0 }), 'instance_id');
    }));
});

describe('Cancel, overrides and metadata', () => {
  test('Cancel removes and returns the revision; NOT_FOUND afterwards', () =>
    withHarness({}, async (h) => {
      const { client, registry } = h;
      registry.register(registration());
      const res = await call(client.cancel.bind(client), { app: 'BILLING', instanceId: 'i-1' });
      assert.equal(res.revision, 2);
      assert.equal(registry.stats().size, 0);
      await rejectsWith(call(client.cancel.bind(client), { app: 'billing', instanceId: 'i-1' }), NOT_FOUND);
      await refusesField(h, call(client.cancel.bind(client), { app: 'billing', instanceId: '' }), 'instance_id');
    }));

  test('SetStatusOverride forces a status; ClearStatusOverride leaves UNKNOWN', () =>
    withHarness({}, async ({ client, registry }) => {
      registry.register(registration());
      const set = await call(client.setStatusOverride.bind(client), {
        app: 'billing',
        instanceId: 'i-1',
        status: InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE,
      });
      assert.equal(set.instance?.status, InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE);
      assert.equal(set.instance?.overriddenStatus, InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE);
      const cleared = await call(client.clearStatusOverride.bind(client), { app: 'billing', instanceId: 'i-1' });
      assert.equal(cleared.instance?.status, InstanceStatus.INSTANCE_STATUS_UNKNOWN);
      assert.equal(cleared.instance?.overriddenStatus, InstanceStatus.INSTANCE_STATUS_UNSPECIFIED);
      assert.equal(registry.get('billing', 'i-1').record.status, 'UNKNOWN');
    }));

  test('override errors: a status is required and must be known and forceable; unknown instances are NOT_FOUND', () =>
    withHarness({}, async (h) => {
      const { client, registry } = h;
      registry.register(registration());
      const force = (status: InstanceStatus, instanceId = 'i-1') => call(client.setStatusOverride.bind(client), { app: 'billing', instanceId, status });
      await refusesField(h, force(InstanceStatus.INSTANCE_STATUS_UNSPECIFIED), 'status');
      await refusesField(h, force(12 as InstanceStatus), 'status');
      await refusesField(h, force(InstanceStatus.INSTANCE_STATUS_UNKNOWN), 'status');
      await rejectsWith(force(InstanceStatus.INSTANCE_STATUS_DOWN, 'nope'), NOT_FOUND);
      await rejectsWith(call(client.clearStatusOverride.bind(client), { app: 'billing', instanceId: 'nope' }), NOT_FOUND);
      await refusesField(h, call(client.clearStatusOverride.bind(client), { app: 'b c', instanceId: 'i-1' }), 'app');
    }));

  test('UpdateMetadata removes then sets keys; bounds are checked', () =>
    withHarness({}, async (h) => {
      const { client, registry } = h;
      registry.register(registration({ metadata: { a: '1', b: '2' } }));
      const res = await call(client.updateMetadata.bind(client), { app: 'billing', instanceId: 'i-1', set: { c: '3', a: '9' }, remove: ['b', 'a'] });
      assert.deepEqual(res.instance?.metadata, { a: '9', c: '3' });
      const tooMany = Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`k${i}`, 'v']));
      await refusesField(h, call(client.updateMetadata.bind(client), { app: 'billing', instanceId: 'i-1', set: tooMany, remove: [] }), 'set');
      await rejectsWith(call(client.updateMetadata.bind(client), { app: 'billing', instanceId: 'nope', set: {}, remove: [] }), NOT_FOUND);
    }));
});

describe('reads', () => {
  test('GetApplication: case-insensitive, ordered by id, empty for an unknown app', () =>
    withHarness({}, async (h) => {
      const { client, registry } = h;
      for (const id of ['i-3', 'i-1', 'i-2']) registry.register(registration({ instanceId: id }));
      registry.register(registration({ app: 'other' }));
      const res = await call(client.getApplication.bind(client), { app: 'BiLLing', pageSize: 0, pageToken: '' });
      assert.equal(res.app, 'billing');
      assert.deepEqual(
        res.instances.map((i) => i.instanceId),
        ['i-1', 'i-2', 'i-3'],
      );
      assert.equal(res.revision, 4);
      const none = await call(client.getApplication.bind(client), { app: 'ghost', pageSize: 0, pageToken: '' });
      assert.deepEqual(none.instances, []);
      await refusesField(h, call(client.getApplication.bind(client), { app: '', pageSize: 0, pageToken: '' }), 'app');
    }));

  test('ListByVip: plain or secure lists, ordered by (app, id)', () =>
    withHarness({}, async (h) => {
      const { client, registry } = h;
      registry.register(registration({ app: 'b', instanceId: '2', vipAddress: 'web, api', secureVipAddress: '' }));
      registry.register(registration({ app: 'a', instanceId: '1', vipAddress: 'api', secureVipAddress: 'api-tls' }));
      registry.register(registration({ app: 'a', instanceId: '3', vipAddress: 'other', secureVipAddress: 'API' }));
      const plain = await call(client.listByVip.bind(client), { vip: 'api', secure: false, pageSize: 0, pageToken: '' });
      assert.deepEqual(
        plain.instances.map((i) => `${i.app}/${i.instanceId}`),
        ['a/1', 'b/2'],
      );
      assert.equal(plain.revision, 3);
      const secure = await call(client.listByVip.bind(client), { vip: 'api', secure: true, pageSize: 0, pageToken: '' });
      assert.deepEqual(
        secure.instances.map((i) => `${i.app}/${i.instanceId}`),
        ['a/3'],
      );
      await refusesField(h, call(client.listByVip.bind(client), { vip: ' ', secure: false, pageSize: 0, pageToken: '' }), 'vip');
    }));

  test('GetDelta pages through the change log with the registry reconcile hash', () =>
    withHarness({}, async (h) => {
      const { client, registry } = h;
      for (let i = 0; i < 5; i++) registry.register(registration({ instanceId: `i-${i}` }));
      registry.setStatusOverride('billing', 'i-0', 'OUT_OF_SERVICE');
      registry.cancel('billing', 'i-1');
      const hash = registry.snapshot().reconcileHash;
      assert.equal(hash, 'OUT_OF_SERVICE_1_UP_3_');

      const first = await call(client.getDelta.bind(client), { sinceRevision: 0, maxChanges: 4, nodeId: '' });
      assert.deepEqual(
        first.changes.map((c) => c.revision),
        [1, 2, 3, 4],
      );
      assert.equal(first.revision, 4);
      assert.equal(first.hasMore, true);
      assert.equal(first.resyncRequired, false);
      assert.equal(first.reconcileHash, hash);
      const rest = await call(client.getDelta.bind(client), { sinceRevision: first.revision, maxChanges: 0, nodeId: '' });
      assert.deepEqual(
        rest.changes.map((c) => [c.revision, c.type, c.instance?.instanceId]),
        [
          [5, 1, 'i-4'],
          [6, 2, 'i-0'],
          [7, 3, 'i-1'],
        ],
      );
      assert.equal(rest.revision, 7);
      assert.equal(rest.hasMore, false);
      const none = await call(client.getDelta.bind(client), { sinceRevision: 7, maxChanges: 10, nodeId: '' });
      assert.deepEqual(none.changes, []);
      assert.equal(none.revision, 7);

      const future = await call(client.getDelta.bind(client), { sinceRevision: 99, maxChanges: 10, nodeId: '' });
      assert.equal(future.resyncRequired, true);
      assert.equal(future.revision, 7);
      await refusesField(h, call(client.getDelta.bind(client), { sinceRevision: 0, maxChanges: 5001, nodeId: '' }), 'max_changes');
    }));

  test('GetDelta says resync when the cursor fell out of the change log', () =>
    withHarness({ registryOptions: { changeLogSize: 3 } }, async ({ client, registry }) => {
      for (let i = 0; i < 6; i++) registry.register(registration({ instanceId: `i-${i}` }));
      const old = await call(client.getDelta.bind(client), { sinceRevision: 1, maxChanges: 10, nodeId: '' });
      assert.equal(old.resyncRequired, true);
      assert.deepEqual(old.changes, []);
      assert.equal(old.revision, 6);
      const recent = await call(client.getDelta.bind(client), { sinceRevision: registry.oldestReplayableRevision, maxChanges: 10, nodeId: '' });
      assert.equal(recent.resyncRequired, false);
      assert.deepEqual(
        recent.changes.map((c) => c.revision),
        [4, 5, 6],
      );
    }));

  test('GetDelta cuts a page by size so it fits a default client, and says has_more', () =>
    withHarness({}, async ({ client, registry }) => {
      const bulky = { blob: 'x'.repeat(1000), ...Object.fromEntries(Array.from({ length: 14 }, (_, i) => [`k${i}`, 'y'.repeat(1000)])) };
      for (let i = 0; i < 600; i++) registry.register(registration({ instanceId: `i-${i}`, metadata: bulky }));
      const revisions: number[] = [];
      let since = 0;
      let pages = 0;
      for (;;) {
        const page = await call(client.getDelta.bind(client), { sinceRevision: since, maxChanges: 5000, nodeId: '' });
        pages++;
        revisions.push(...page.changes.map((c) => c.revision));
        assert.equal(page.revision, page.changes.at(-1)?.revision ?? since);
        since = page.revision;
        if (!page.hasMore) break;
      }
      assert.ok(pages >= 3, `600 changes of ~15 KB need several pages, got ${pages}`);
      assert.deepEqual(
        revisions,
        Array.from({ length: 600 }, (_, i) => i + 1),
      );
    }));
});

describe('readiness and overload', () => {
  test('while not ready, reads are UNAVAILABLE and writes still work', () => {
    let ready = false;
    return withHarness({ ready: () => ready }, async ({ client, registry }) => {
      registry.register(registration());
      const unavailable = /^node is starting: not yet synchronised with its peers$/;
      await rejectsWith(call(client.getInstance.bind(client), { app: 'billing', instanceId: 'i-1' }), UNAVAILABLE, unavailable);
      await rejectsWith(call(client.getApplication.bind(client), { app: 'billing', pageSize: 0, pageToken: '' }), UNAVAILABLE, unavailable);
      await rejectsWith(call(client.listByVip.bind(client), { vip: 'billing', secure: false, pageSize: 0, pageToken: '' }), UNAVAILABLE, unavailable);
      await rejectsWith(call(client.getDelta.bind(client), { sinceRevision: 0, maxChanges: 0, nodeId: '' }), UNAVAILABLE, unavailable);
      const list = new StreamReader(client.listApplications({ chunkSize: 0 }));
      assert.equal((await list.ended())?.code, UNAVAILABLE);
      const watch = new StreamReader(client.watch({ app: '', vip: '', nodeId: '' }));
      assert.equal((await watch.ended())?.code, UNAVAILABLE);

      const hb = await call(client.heartbeat.bind(client), { app: 'billing', instanceId: 'i-1', lastDirtyTimestamp: 0 });
      assert.equal(hb.status, InstanceStatus.INSTANCE_STATUS_UP);
      await call(client.register.bind(client), { instance: protoInstance({ instanceId: 'i-2' }) });
      ready = true;
      const got = await call(client.getInstance.bind(client), { app: 'billing', instanceId: 'i-2' });
      assert.equal(got.instance?.instanceId, 'i-2');
    });
  });

  test('writes over the rate are RESOURCE_EXHAUSTED until the bucket refills; reads are not limited', () =>
    withHarness({ limits: { writesPerSecond: 2, writeBurst: 3 } }, async ({ client, registry, clock }) => {
      const register = (id: string) => call(client.register.bind(client), { instance: protoInstance({ instanceId: id }) });
      await register('a');
      await call(client.heartbeat.bind(client), { app: 'billing', instanceId: 'a', lastDirtyTimestamp: 0 });
      await call(client.updateMetadata.bind(client), { app: 'billing', instanceId: 'a', set: { k: 'v' }, remove: [] });
      const revision = registry.revision;
      const limited = /^rate limit exceeded$/;
      await rejectsWith(register('b'), RESOURCE_EXHAUSTED, limited);
      await rejectsWith(call(client.heartbeat.bind(client), { app: 'billing', instanceId: 'a', lastDirtyTimestamp: 0 }), RESOURCE_EXHAUSTED, limited);
      await rejectsWith(call(client.cancel.bind(client), { app: 'billing', instanceId: 'a' }), RESOURCE_EXHAUSTED, limited);
      await rejectsWith(call(client.setStatusOverride.bind(client), { app: 'billing', instanceId: 'a', status: InstanceStatus.INSTANCE_STATUS_DOWN }), RESOURCE_EXHAUSTED, limited);
      await rejectsWith(call(client.clearStatusOverride.bind(client), { app: 'billing', instanceId: 'a' }), RESOURCE_EXHAUSTED, limited);
      await rejectsWith(call(client.updateMetadata.bind(client), { app: 'billing', instanceId: 'a', set: {}, remove: [] }), RESOURCE_EXHAUSTED, limited);
      assert.equal(registry.revision, revision, 'nothing changed');
      await call(client.getInstance.bind(client), { app: 'billing', instanceId: 'a' });

      clock.advance(500);
      await register('b');
      await rejectsWith(register('c'), RESOURCE_EXHAUSTED, limited);
    }));
});

/** A Heartbeats stream with a reader for its responses. */
function openHeartbeats(h: Harness) {
  const stream = h.client.heartbeats({ deadline: Date.now() + WAIT_MS });
  return { stream, reader: new StreamReader<HeartbeatsResponse>(stream) };
}

describe('undecodable requests', () => {
  test('an int64 beyond 2^53 is INVALID_ARGUMENT, not INTERNAL, and changes nothing', () =>
    withHarness({}, async (h) => {
      h.registry.register(registration({ instanceId: 'a' }));
      const bytes = new BinaryWriter().uint32(10).string('billing').uint32(18).string('a').uint32(24).int64('1152921504606846976').finish();
      const code = await new Promise<grpc.status>((resolve) =>
        h.client.makeUnaryRequest(
          '/roster.v1.RegistryService/Heartbeat',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from(bytes),
          (err) => resolve(err?.code ?? OK),
        ),
      );
      assert.equal(code, INVALID_ARGUMENT);
      assert.equal(h.registry.revision, 1);
    }));
});

describe('limits', () => {
  test('settings that would disable a bound are refused at start', async () => {
    for (const limits of [{ maxWatchBacklog: 0 }, { watchProgressIntervalMs: 0 }, { writeBurst: 0 }, { writesPerSecond: Number.NaN }]) {
      await assert.rejects(startHarness({ limits }), RangeError, JSON.stringify(limits));
    }
  });

  test('maxWatchers 0 turns Watch off', () =>
    withHarness({ limits: { maxWatchers: 0 } }, async (h) => {
      const err = await new StreamReader(h.client.watch({ app: '', vip: '', nodeId: '' })).ended();
      assert.equal(err?.code, RESOURCE_EXHAUSTED);
    }));
});

describe('Heartbeats', () => {
  test('shutdown ends an open Heartbeats stream with UNAVAILABLE so agents fail over', () =>
    withHarness({}, async (h) => {
      h.registry.register(registration({ instanceId: 'a' }));
      const { stream, reader } = openHeartbeats(h);
      stream.write({ batchId: 1, heartbeats: [{ app: 'billing', instanceId: 'a', lastDirtyTimestamp: 0 }] } satisfies HeartbeatsRequest);
      await reader.next();
      const started = Date.now();
      const stopping = h.server.shutdown(WAIT_MS);
      assert.equal((await reader.ended())?.code, UNAVAILABLE);
      await stopping;
      assert.ok(Date.now() - started < WAIT_MS, 'the stream did not hold shutdown for the whole grace period');
    }));

  test('each batch gets one result per heartbeat, in order; a bad item fails only itself', () =>
    withHarness({}, async (h) => {
      h.registry.register(registration({ instanceId: 'a', lastDirtyTimestamp: 1_000 }));
      h.registry.register(registration({ instanceId: 'b' }));
      h.registry.setStatusOverride('billing', 'b', 'OUT_OF_SERVICE');
      const { stream, reader } = openHeartbeats(h);
      stream.write({
        batchId: 41,
        heartbeats: [
          { app: 'BILLING', instanceId: 'a', lastDirtyTimestamp: 1_000 },
          { app: 'billing', instanceId: 'ghost', lastDirtyTimestamp: 0 },
          { app: 'bad app', instanceId: 'a', lastDirtyTimestamp: 0 },
          { app: 'billing', instanceId: 'b', lastDirtyTimestamp: 0 },
          { app: 'billing', instanceId: 'a', lastDirtyTimestamp: 5_000 },
        ],
      } satisfies HeartbeatsRequest);
      const first = await reader.next();
      assert.equal(first.batchId, 41);
      assert.deepEqual(
        first.results.map((r) => [r.code, r.status]),
        [
          [OK, InstanceStatus.INSTANCE_STATUS_UP],
          [NOT_FOUND, InstanceStatus.INSTANCE_STATUS_UNSPECIFIED],
          [INVALID_ARGUMENT, InstanceStatus.INSTANCE_STATUS_UNSPECIFIED],
          [OK, InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE],
          [NOT_FOUND, InstanceStatus.INSTANCE_STATUS_UNSPECIFIED],
        ],
      );
      assert.match(first.results[1]!.message, /not registered/);
      assert.match(first.results[2]!.message, /^app: /);
      assert.match(first.results[4]!.message, /newer/);
      stream.write({ batchId: 42, heartbeats: [{ app: 'billing', instanceId: 'a', lastDirtyTimestamp: 0 }] });
      const second = await reader.next();
      assert.equal(second.batchId, 42);
      assert.equal(second.results[0]!.code, OK);
      stream.end();
      assert.equal(await reader.ended(), undefined, 'ends OK after the client half-closes');
    }));

  test('an empty or oversized batch fails the whole stream with INVALID_ARGUMENT naming heartbeats', () =>
    withHarness({}, async (h) => {
      h.registry.register(registration());
      for (const size of [0, 1001]) {
        const { stream, reader } = openHeartbeats(h);
        stream.write({ batchId: 1, heartbeats: [{ app: 'billing', instanceId: 'i-1', lastDirtyTimestamp: 0 }] });
        assert.equal((await reader.next()).results[0]!.code, OK);
        const lastRenewal = h.registry.get('billing', 'i-1').lease.lastRenewalTimestamp;
        h.clock.advance(1000);
        stream.write({ batchId: 2, heartbeats: Array.from({ length: size }, () => ({ app: 'billing', instanceId: 'i-1', lastDirtyTimestamp: 0 })) });
        const err = await reader.ended();
        assert.equal(err?.code, INVALID_ARGUMENT);
        assert.match(err.details, /^heartbeats: /);
        assert.equal(h.registry.get('billing', 'i-1').lease.lastRenewalTimestamp, lastRenewal, 'nothing renewed');
      }
    }));

  test('rate-limited heartbeats get RESOURCE_EXHAUSTED results', () =>
    withHarness({ limits: { writesPerSecond: 1, writeBurst: 2 } }, async (h) => {
      h.registry.register(registration());
      const { stream, reader } = openHeartbeats(h);
      stream.write({ batchId: 1, heartbeats: Array.from({ length: 3 }, () => ({ app: 'billing', instanceId: 'i-1', lastDirtyTimestamp: 0 })) });
      const res = await reader.next();
      assert.deepEqual(
        res.results.map((r) => r.code),
        [OK, OK, RESOURCE_EXHAUSTED],
      );
      assert.equal(res.results[2]!.message, 'rate limit exceeded');
      stream.end();
      assert.equal(await reader.ended(), undefined);
    }));

  test('a client that stops reading is pushed back on, and every batch is answered once it reads again', () =>
    withHarness({ limits: { writesPerSecond: 1e9, writeBurst: 1e9 } }, async (h) => {
      h.registry.register(registration());
      const stream = h.client.heartbeats({ deadline: Date.now() + 3 * WAIT_MS });
      const answers: HeartbeatsResponse[] = [];
      // grpc-js applies flow control only once the app has started reading: start, then stop.
      stream.on('data', (res: HeartbeatsResponse) => answers.push(res));
      stream.pause();
      const batch = (batchId: number): HeartbeatsRequest => ({
        batchId,
        heartbeats: Array.from({ length: 1000 }, () => ({ app: 'billing', instanceId: 'i-1', lastDirtyTimestamp: 0 })),
      });
      let sent = 0;
      let pushedBack = false;
      while (sent < 1000 && !pushedBack) {
        if (stream.write(batch(++sent))) continue;
        pushedBack = !(await Promise.race([new Promise<boolean>((resolve) => stream.once('drain', () => resolve(true))), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 500))]));
      }
      assert.ok(pushedBack, `writes were never held back (${sent} batches sent unread)`);
      assert.equal(answers.length, 0);
      stream.end();
      stream.resume();
      await new Promise<void>((resolve, reject) => {
        stream.on('error', reject);
        stream.on('end', resolve);
      });
      assert.deepEqual(
        answers.map((a) => a.batchId),
        Array.from({ length: sent }, (_, i) => i + 1),
      );
      assert.ok(answers.every((a) => a.results.length === 1000 && a.results.every((r) => r.code === OK)));
    }));
});
