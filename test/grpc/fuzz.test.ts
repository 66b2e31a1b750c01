import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { FakeClock } from '../../src/core/clock.js';
import { Registry } from '../../src/core/registry.js';
import type { Instance } from '../../src/gen/roster/v1/instance.js';
import { InstanceStatus } from '../../src/gen/roster/v1/instance.js';
import type { RegistryServiceClient } from '../../src/gen/roster/v1/registry_service.js';
import * as rpb from '../../src/gen/roster/v1/replication_service.js';
import { recordFromProto } from '../../src/grpc/convert.js';
import { createReplicationService } from '../../src/grpc/replication-service.js';
import { startGrpcServer, type GrpcServerHandle } from '../../src/grpc/server.js';
import { deflateSync, gzipSync } from 'node:zlib';
import * as rs from '../../src/gen/roster/v1/registry_service.js';
import { newClient, silentLogger } from './helpers.js';
import { grpcFrame, rawCall } from './raw-http2.js';

/**
 * Random well-formed requests with values at the edges, against every RegistryService and
 * ReplicationService method of one real server: no INTERNAL or UNKNOWN, no crash, nothing
 * changed by a refusal, and a peer's snapshot of whatever got stored still converges.
 */
const SEED = 20261201;
const CALL_MS = 5_000;

// 2^63 - 1024 is the largest double an int64 can carry; 2^53 + 2 the first even integer past exact.
const EDGE_INT64 = [0, -1, 1, 1_000, 2 ** 31, 2 ** 53 - 1, 2 ** 53 + 2, 2 ** 63 - 1024, -(2 ** 63), 1_764_547_200_000, 1_764_547_200_000 + 3 * 86_400_000];
const EDGE_U32 = [0, 1, 30, 90, 300, 301, 3600, 65_535, 65_536, 2 ** 32 - 1];
const NAMES = ['billing', 'BILLING', 'orders', 'a'.repeat(128), 'a'.repeat(129), '', 'no spaces', 'ü', '\ud800', 'x'.repeat(5000), '../etc', 'a,b'];

const int64 = fc.constantFrom(...EDGE_INT64);
const uint64 = fc.constantFrom(0, 1, 7, 2 ** 53 - 1, 2 ** 53 + 2, 2 ** 64 - 4096);
const u32 = fc.constantFrom(...EDGE_U32);
const name = fc.oneof({ weight: 4, arbitrary: fc.constantFrom('billing', 'orders') }, { weight: 2, arbitrary: fc.constantFrom(...NAMES) }, fc.string({ maxLength: 12 }));
const id = fc.oneof({ weight: 4, arbitrary: fc.constantFrom('i-1', 'i-2', 'i-3') }, fc.constantFrom(...NAMES), fc.string({ maxLength: 12 }));
const status = fc.integer({ min: -1, max: 7 }) as fc.Arbitrary<InstanceStatus>;
const metadata = fc.oneof(
  fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 16 }), { maxKeys: 4 }),
  fc.constant(Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, 'v']))),
  fc.constant({ big: 'x'.repeat(2000) }),
);
const nameList = fc.oneof(fc.array(name, { maxLength: 4 }), fc.constant(Array.from({ length: 20_000 }, () => 'billing')));

const anyInstance: fc.Arbitrary<Instance> = fc.record({
  app: name,
  instanceId: id,
  hostName: fc.constantFrom('h.local', '', 'x'.repeat(300)),
  ipAddr: fc.constantFrom('10.0.0.1', '', '::1', 'not-an-ip', '1'.repeat(50)),
  port: fc.option(fc.record({ number: u32, enabled: fc.boolean() }), { nil: undefined }),
  securePort: fc.option(fc.record({ number: u32, enabled: fc.boolean() }), { nil: undefined }),
  status,
  overriddenStatus: status,
  vipAddress: fc.constantFrom('billing.vip', '', 'a, b', 'x'.repeat(2000)),
  secureVipAddress: fc.constantFrom('', 'secure.vip'),
  zone: fc.constantFrom('', 'z1', 'x'.repeat(100)),
  region: fc.constantFrom('', 'r1'),
  metadata,
  homePageUrl: fc.constantFrom('', 'http://h/'),
  statusPageUrl: fc.constant(''),
  healthCheckUrl: fc.constant(''),
  leaseInfo: fc.option(fc.record({ renewalIntervalSecs: u32, durationSecs: u32, registrationTimestamp: int64, lastRenewalTimestamp: int64, evictionTimestamp: int64, serviceUpTimestamp: int64 }), {
    nil: undefined,
  }),
  lastDirtyTimestamp: int64,
  lastUpdatedTimestamp: int64,
}) as fc.Arbitrary<Instance>;

/** Valid but for the versions and statuses, so writes get stored and edge timestamps reach the core. */
const storableInstance: fc.Arbitrary<Instance> = fc
  .record({
    app: fc.constantFrom('billing', 'orders'),
    instanceId: fc.constantFrom('i-1', 'i-2', 'i-3'),
    status: fc.constantFrom(InstanceStatus.INSTANCE_STATUS_UP, InstanceStatus.INSTANCE_STATUS_DOWN, InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE),
    lastDirtyTimestamp: int64,
    lastUpdatedTimestamp: int64,
    metadata: fc.dictionary(fc.constantFrom('a', 'b'), fc.string({ maxLength: 8 }), { maxKeys: 2 }),
  })
  .map((v) => ({
    ...v,
    hostName: 'h.local',
    ipAddr: '10.0.0.1',
    port: { number: 8080, enabled: true },
    securePort: undefined,
    overriddenStatus: InstanceStatus.INSTANCE_STATUS_UNSPECIFIED,
    vipAddress: 'billing.vip',
    secureVipAddress: '',
    zone: 'z1',
    region: '',
    homePageUrl: '',
    statusPageUrl: '',
    healthCheckUrl: '',
    leaseInfo: { renewalIntervalSecs: 30, durationSecs: 90, registrationTimestamp: 0, lastRenewalTimestamp: 0, evictionTimestamp: 0, serviceUpTimestamp: 0 },
  }));
const instance = fc.oneof({ weight: 3, arbitrary: storableInstance }, { weight: 1, arbitrary: anyInstance });

type Op = { readonly method: string; readonly request: unknown; readonly writes: boolean };
const op = (method: string, request: fc.Arbitrary<unknown>, writes = true): fc.Arbitrary<Op> => request.map((r) => ({ method, request: r, writes }));

const ops: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: op('register', fc.record({ instance: fc.option(instance, { nil: undefined, freq: 10 }) })) },
  op('heartbeat', fc.record({ app: name, instanceId: id, lastDirtyTimestamp: int64 })),
  op('cancel', fc.record({ app: name, instanceId: id })),
  op('setStatusOverride', fc.record({ app: name, instanceId: id, status })),
  op('clearStatusOverride', fc.record({ app: name, instanceId: id })),
  op('updateMetadata', fc.record({ app: name, instanceId: id, set: metadata, remove: fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }) })),
  op('getInstance', fc.record({ app: name, instanceId: id }), false),
  op('getApplication', fc.record({ app: name, pageSize: u32, pageToken: fc.constantFrom('', 'garbage', 'W10') }), false),
  op('listByVip', fc.record({ vip: name, secure: fc.boolean(), pageSize: u32, pageToken: fc.constantFrom('', 'garbage') }), false),
  op('getDelta', fc.record({ sinceRevision: uint64, maxChanges: u32, nodeId: fc.constantFrom('', 'other') }), false),
  op('listApplications', fc.record({ chunkSize: u32 }), false),
  op('watch', fc.record({ sinceRevision: fc.option(uint64, { nil: undefined }), app: name, vip: fc.constantFrom('', 'billing.vip'), nodeId: fc.constantFrom('', 'x') }), false),
  op('heartbeats', fc.array(fc.record({ app: name, instanceId: id, lastDirtyTimestamp: int64 }), { maxLength: 5 })),
  {
    weight: 3,
    arbitrary: op(
      'replicate',
      fc.oneof(
        {
          weight: 5,
          arbitrary: fc.array(fc.record({ action: fc.integer({ min: -1, max: 4 }), instance: fc.option(instance, { nil: undefined, freq: 10 }), originTimestamp: int64 }), { maxLength: 5 }),
        },
        fc.constant('oversized'),
      ),
    ),
  },
  op('snapshot', fc.record({ apps: nameList }), false),
  op('digest', fc.constant({}), false),
);

/**
 * Requests as raw bytes, for what no client sends: strings that are not UTF-8 (SPOT's bytes
 * are overwritten after encoding), compressed and corrupt-compressed frames, and malformed
 * `grpc-timeout` headers. Each of those must be INVALID_ARGUMENT and change nothing.
 */
const SPOT = 'QQQQ';
const NOT_UTF8 = [
  [0x80, 0xff, 0x51, 0x51],
  [0xc0, 0xaf, 0x51, 0x51],
  [0xed, 0xa0, 0x80, 0x51],
  [0xf4, 0x90, 0x80, 0x80],
  [0x51, 0x51, 0x51, 0xe2],
];
const spotted = fc.oneof({ weight: 3, arbitrary: fc.constantFrom('billing', 'orders') }, fc.constant(SPOT));
const spottedId = fc.oneof({ weight: 3, arbitrary: fc.constantFrom('i-1', 'i-2') }, fc.constant(SPOT));
type RawOp = { readonly path: string; readonly bytes: Uint8Array; readonly writes: boolean };
const raw = (path: string, encode: fc.Arbitrary<Uint8Array>, writes: boolean): fc.Arbitrary<RawOp> => encode.map((bytes) => ({ path, bytes, writes }));
const rawRequests: fc.Arbitrary<RawOp> = fc.oneof(
  raw(
    rs.RegistryServiceService.register.path,
    fc.tuple(storableInstance, spotted, spotted).map(([i, host, value]) => rs.RegisterRequest.encode({ instance: { ...i, hostName: host, metadata: { ...i.metadata, k: value } } }).finish()),
    true,
  ),
  raw(
    rs.RegistryServiceService.heartbeat.path,
    fc.record({ app: spotted, instanceId: spottedId, lastDirtyTimestamp: int64 }).map((r) => rs.HeartbeatRequest.encode(r).finish()),
    true,
  ),
  raw(
    rs.RegistryServiceService.cancel.path,
    fc.record({ app: spotted, instanceId: spottedId }).map((r) => rs.CancelRequest.encode(r).finish()),
    true,
  ),
  raw(
    rs.RegistryServiceService.updateMetadata.path,
    fc
      .record({ app: spotted, instanceId: spottedId, set: fc.dictionary(spotted, spotted, { maxKeys: 2 }), remove: fc.array(spotted, { maxLength: 2 }) })
      .map((r) => rs.UpdateMetadataRequest.encode(r).finish()),
    true,
  ),
  raw(
    rs.RegistryServiceService.getInstance.path,
    fc.record({ app: spotted, instanceId: spottedId }).map((r) => rs.GetInstanceRequest.encode(r).finish()),
    false,
  ),
  raw(
    rs.RegistryServiceService.getApplication.path,
    fc.record({ app: spotted, pageSize: u32, pageToken: fc.constantFrom('', SPOT) }).map((r) => rs.GetApplicationRequest.encode(r).finish()),
    false,
  ),
  raw(
    rs.RegistryServiceService.listByVip.path,
    fc.record({ vip: spotted, secure: fc.boolean(), pageSize: u32, pageToken: fc.constant('') }).map((r) => rs.ListByVipRequest.encode(r).finish()),
    false,
  ),
  raw(
    rs.RegistryServiceService.heartbeats.path,
    fc
      .array(fc.record({ app: spotted, instanceId: spottedId, lastDirtyTimestamp: int64 }), { minLength: 1, maxLength: 3 })
      .map((heartbeats) => rs.HeartbeatsRequest.encode({ batchId: 1, heartbeats }).finish()),
    true,
  ),
  raw(
    rpb.ReplicationServiceService.replicate.path,
    fc.array(fc.tuple(storableInstance, spotted), { minLength: 1, maxLength: 3 }).map((tasks) =>
      rpb.ReplicateRequest.encode({
        batchId: 1,
        tasks: tasks.map(([i, zone]) => ({ action: rpb.ReplicationAction.REPLICATION_ACTION_REGISTER, instance: { ...i, zone }, originTimestamp: 0 })),
      }).finish(),
    ),
    true,
  ),
  raw(
    rpb.ReplicationServiceService.snapshot.path,
    fc.array(spotted, { maxLength: 3 }).map((apps) => rpb.SnapshotRequest.encode({ apps }).finish()),
    false,
  ),
);
const rawOps = fc.record({
  request: rawRequests,
  notUtf8: fc.constantFrom(...NOT_UTF8),
  corruptStrings: fc.boolean(),
  encoding: fc.constantFrom('identity', 'gzip', 'deflate', 'corrupt-gzip', 'corrupt-deflate'),
  timeout: fc.constantFrom(undefined, '5S', '2000m', '1x', 'S', 'soon', '99999999999'),
});

describe('fuzz: every method of both services, values at the edges', () => {
  let registry: Registry;
  let server: GrpcServerHandle;
  let client: RegistryServiceClient;
  let peer: rpb.ReplicationServiceClient;

  before(async () => {
    const clock = new FakeClock(1_764_547_200_000);
    registry = new Registry({ clock });
    const logger = silentLogger();
    const replication = createReplicationService({ registry, nodeId: 'fuzz', clock, logger });
    server = await startGrpcServer({
      registry,
      clock,
      logger,
      extraServices: [{ definition: rpb.ReplicationServiceService, implementation: replication.implementation as unknown as grpc.UntypedServiceImplementation }],
    });
    const address = `127.0.0.1:${server.port}`;
    client = newClient(address);
    peer = new rpb.ReplicationServiceClient(address, grpc.credentials.createInsecure());
  });
  after(async () => {
    client.close();
    peer.close();
    await server.shutdown(0);
  });

  /** Runs one call; resolves with its status code (OK for success, whatever the stream returned). */
  const run = (o: Op): Promise<grpc.status> => {
    const deadline = Date.now() + CALL_MS;
    return new Promise((resolve, reject) => {
      const done = (err: grpc.ServiceError | null): void => resolve(err ? err.code : grpc.status.OK);
      const stream = (call: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>, endAfterFirst: boolean): void => {
        call.on('data', () => {
          if (endAfterFirst) {
            call.cancel();
            resolve(grpc.status.OK);
          }
        });
        call.on('error', (err: grpc.ServiceError) => resolve(err.code === grpc.status.CANCELLED ? grpc.status.OK : err.code));
        call.on('end', () => resolve(grpc.status.OK));
      };
      const c = client as unknown as Record<string, (...args: unknown[]) => unknown>;
      switch (o.method) {
        case 'listApplications':
          return stream(client.listApplications(o.request as never, { deadline }), false);
        case 'watch':
          return stream(client.watch(o.request as never, { deadline }), true);
        case 'heartbeats': {
          const call = client.heartbeats({ deadline });
          stream(call, true);
          call.write({ batchId: 1, heartbeats: o.request as never });
          return;
        }
        case 'replicate': {
          const call = peer.replicate({ deadline });
          stream(call, true);
          const tasks = o.request === 'oversized' ? Array.from({ length: 1001 }, () => rpb.ReplicationTask.fromPartial({ action: 2, instance: { app: 'billing', instanceId: 'i-1' } })) : o.request;
          call.write({ batchId: 1, tasks: tasks as never });
          return;
        }
        case 'snapshot':
          return stream(peer.snapshot(o.request as never, { deadline }), false);
        case 'digest':
          return peer.digest({}, new grpc.Metadata(), { deadline }, done);
        default:
          try {
            c[o.method]!.call(client, o.request, new grpc.Metadata(), { deadline }, done);
          } catch (err) {
            reject(err as Error);
          }
      }
    });
  };

  test('no INTERNAL, no crash, refusals change nothing, and a snapshot of the result converges on a peer', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(ops, { minLength: 1, maxLength: 25 }), async (sequence) => {
        for (const o of sequence) {
          const before = registry.revision;
          const code = await run(o);
          assert.ok(code !== grpc.status.INTERNAL && code !== grpc.status.UNKNOWN, `${o.method} answered ${grpc.status[code]}`);
          if (o.writes && code === grpc.status.INVALID_ARGUMENT) assert.equal(registry.revision, before, `${o.method}: a refusal changed the registry`);
        }
        // A new peer's start-up sync over the real Snapshot path reproduces what is stored.
        const copy = new Registry({ clock: new FakeClock(1_764_547_200_000) });
        await new Promise<void>((resolve, reject) => {
          const call = peer.snapshot({ apps: [] }, { deadline: Date.now() + CALL_MS });
          call.on('data', (chunk: rpb.SnapshotResponse) => {
            for (const r of chunk.records) copy.applyRecord(recordFromProto(r.instance!), r.leaseRemainingMs);
          });
          call.on('error', reject);
          call.on('end', () => resolve());
        });
        assert.deepEqual(copy.digest(), registry.digest());
      }),
      { seed: SEED, numRuns: 60, interruptAfterTimeLimit: 60_000, verbose: 1 },
    );
  });

  test('raw bytes: strings that are not UTF-8, corrupt compression and malformed grpc-timeout are INVALID_ARGUMENT and change nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(rawOps, { minLength: 1, maxLength: 10 }), async (sequence) => {
        for (const { request, notUtf8, corruptStrings, encoding, timeout } of sequence) {
          const bytes = Buffer.from(request.bytes);
          let spots = 0;
          if (corruptStrings) for (let at = bytes.indexOf(SPOT); at >= 0; at = bytes.indexOf(SPOT, at + 1), spots++) bytes.set(notUtf8, at);
          const [name, corrupt] = encoding.startsWith('corrupt-') ? [encoding.slice(8), true] : [encoding, false];
          const body = corrupt ? Buffer.from('not a compressed message') : name === 'gzip' ? gzipSync(bytes) : name === 'deflate' ? deflateSync(bytes) : bytes;
          const headers = { ...(name !== 'identity' ? { 'grpc-encoding': name } : {}), ...(timeout !== undefined ? { 'grpc-timeout': timeout } : {}) };
          const badTimeout = timeout !== undefined && !/^\d{1,8}[HMSmun]$/.test(timeout);
          const before = registry.revision;
          const status = await rawCall(server.port, request.path, [grpcFrame(body, name !== 'identity')], headers);
          const what = `${request.path} (${spots} strings not UTF-8, ${encoding}, grpc-timeout ${timeout}): ${grpc.status[status.code]} ${status.details}`;
          assert.ok(status.code !== grpc.status.INTERNAL && status.code !== grpc.status.UNKNOWN, what);
          if (spots > 0 || corrupt || badTimeout) {
            assert.equal(status.code, grpc.status.INVALID_ARGUMENT, what);
            assert.equal(registry.revision, before, `a refusal changed the registry: ${what}`);
          }
          if (request.writes && status.code === grpc.status.INVALID_ARGUMENT) assert.equal(registry.revision, before, `a refusal changed the registry: ${what}`);
        }
      }),
      { seed: SEED, numRuns: 40, interruptAfterTimeLimit: 60_000, verbose: 1 },
    );
  });
});
