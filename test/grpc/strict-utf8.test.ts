import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { FakeClock } from '../../src/core/clock.js';
import { Registry } from '../../src/core/registry.js';
import type { Instance } from '../../src/gen/roster/v1/instance.js';
import * as rs from '../../src/gen/roster/v1/registry_service.js';
import * as rpb from '../../src/gen/roster/v1/replication_service.js';
import { createReplicationService } from '../../src/grpc/replication-service.js';
import { decodeStrictUtf8, InvalidUtf8Error, MAP_FIELDS } from '../../src/grpc/strict-utf8.js';
import { recordToProto } from '../../src/grpc/convert.js';
import { registration } from '../core/fixtures.js';
import { silentLogger, startHarness, type Harness } from './helpers.js';
import { grpcFrame, rawCall } from './raw-http2.js';

/** Stands where the invalid bytes go: encoded, then its bytes are overwritten in place (same length). */
const SPOT = 'QQQQ';
/** Not UTF-8: a lone continuation byte, a byte that never occurs in UTF-8, then ASCII. */
const NOT_UTF8 = [0x80, 0xff, 0x51, 0x51];

/** `bytes` with every occurrence of SPOT's bytes replaced by NOT_UTF8. */
function corrupt(bytes: Uint8Array): Buffer {
  const out = Buffer.from(bytes);
  const spot = Buffer.from(SPOT);
  let at = out.indexOf(spot);
  assert.ok(at >= 0, 'the request does not carry the spot');
  for (; at >= 0; at = out.indexOf(spot, at + 1)) out.set(NOT_UTF8, at);
  return out;
}

const instance = (overrides: Partial<Instance>): Instance => ({
  ...recordToProto({ ...registration(), overriddenStatus: undefined, lastUpdatedTimestamp: 0 }),
  ...overrides,
});

/** Every method of both services with a string in its request, the request with SPOT in one string, and that field's name. */
const CASES: ReadonlyArray<{ path: string; bytes: Uint8Array; field: string }> = [
  { path: rs.RegistryServiceService.register.path, bytes: rs.RegisterRequest.encode({ instance: instance({ hostName: SPOT }) }).finish(), field: 'instance.host_name' },
  { path: rs.RegistryServiceService.register.path, bytes: rs.RegisterRequest.encode({ instance: instance({ metadata: { version: SPOT } }) }).finish(), field: 'instance.metadata["version"]' },
  { path: rs.RegistryServiceService.register.path, bytes: rs.RegisterRequest.encode({ instance: instance({ metadata: { [SPOT]: '1' } }) }).finish(), field: 'instance.metadata (a key)' },
  { path: rs.RegistryServiceService.heartbeat.path, bytes: rs.HeartbeatRequest.encode({ app: 'billing', instanceId: SPOT, lastDirtyTimestamp: 0 }).finish(), field: 'instance_id' },
  {
    path: rs.RegistryServiceService.heartbeats.path,
    bytes: rs.HeartbeatsRequest.encode({
      batchId: 1,
      heartbeats: [
        { app: 'billing', instanceId: 'i-1', lastDirtyTimestamp: 0 },
        { app: SPOT, instanceId: 'i-1', lastDirtyTimestamp: 0 },
      ],
    }).finish(),
    field: 'heartbeats[1].app',
  },
  { path: rs.RegistryServiceService.cancel.path, bytes: rs.CancelRequest.encode({ app: SPOT, instanceId: 'i-1' }).finish(), field: 'app' },
  { path: rs.RegistryServiceService.setStatusOverride.path, bytes: rs.SetStatusOverrideRequest.encode({ app: 'billing', instanceId: SPOT, status: 2 }).finish(), field: 'instance_id' },
  { path: rs.RegistryServiceService.clearStatusOverride.path, bytes: rs.ClearStatusOverrideRequest.encode({ app: SPOT, instanceId: 'i-1' }).finish(), field: 'app' },
  { path: rs.RegistryServiceService.updateMetadata.path, bytes: rs.UpdateMetadataRequest.encode({ app: 'billing', instanceId: 'i-1', set: { k: SPOT }, remove: [] }).finish(), field: 'set["k"]' },
  { path: rs.RegistryServiceService.updateMetadata.path, bytes: rs.UpdateMetadataRequest.encode({ app: 'billing', instanceId: 'i-1', set: {}, remove: ['a', SPOT] }).finish(), field: 'remove[1]' },
  { path: rs.RegistryServiceService.getInstance.path, bytes: rs.GetInstanceRequest.encode({ app: SPOT, instanceId: 'i-1' }).finish(), field: 'app' },
  { path: rs.RegistryServiceService.getApplication.path, bytes: rs.GetApplicationRequest.encode({ app: 'billing', pageSize: 0, pageToken: SPOT }).finish(), field: 'page_token' },
  { path: rs.RegistryServiceService.listByVip.path, bytes: rs.ListByVipRequest.encode({ vip: SPOT, secure: false, pageSize: 0, pageToken: '' }).finish(), field: 'vip' },
  { path: rs.RegistryServiceService.getDelta.path, bytes: rs.GetDeltaRequest.encode({ sinceRevision: 0, maxChanges: 0, nodeId: SPOT }).finish(), field: 'node_id' },
  { path: rs.RegistryServiceService.watch.path, bytes: rs.WatchRequest.encode({ app: 'billing', vip: SPOT, nodeId: '' }).finish(), field: 'vip' },
  {
    path: rpb.ReplicationServiceService.replicate.path,
    bytes: rpb.ReplicateRequest.encode({ batchId: 1, tasks: [{ action: rpb.ReplicationAction.REPLICATION_ACTION_REGISTER, instance: instance({ zone: SPOT }), originTimestamp: 0 }] }).finish(),
    field: 'tasks[0].instance.zone',
  },
  { path: rpb.ReplicationServiceService.snapshot.path, bytes: rpb.SnapshotRequest.encode({ apps: ['billing', SPOT] }).finish(), field: 'apps[1]' },
];

describe('strings that are not UTF-8 are refused, naming the field', () => {
  let h: Harness;

  before(async () => {
    const clock = new FakeClock();
    const registry = new Registry({ clock });
    const replication = createReplicationService({ registry, nodeId: 'n1', clock, logger: silentLogger() });
    h = await startHarness({
      prebuilt: { clock, registry },
      extraServices: [{ definition: rpb.ReplicationServiceService, implementation: replication.implementation as unknown as grpc.UntypedServiceImplementation }],
    });
    registry.register(registration());
  });
  after(() => h.close());

  test('every roster.v1 method with a string field: INVALID_ARGUMENT naming it, nothing changed', async () => {
    for (const { path, bytes, field } of CASES) {
      const revision = h.registry.revision;
      const status = await rawCall(h.server.port, path, [grpcFrame(corrupt(bytes))]);
      assert.deepEqual(status, { code: grpc.status.INVALID_ARGUMENT, details: `${field}: is not valid UTF-8` }, path);
      assert.equal(h.registry.revision, revision, `${path} changed the registry`);
    }
    // The same requests with the spot left as it is get past decoding.
    const valid = await rawCall(h.server.port, rs.RegistryServiceService.getInstance.path, [grpcFrame(rs.GetInstanceRequest.encode({ app: 'billing', instanceId: 'i-1' }).finish())]);
    assert.equal(valid.code, grpc.status.OK);
  });

  test('valid UTF-8 passes untouched, including U+FFFD itself, a leading U+FEFF and 4-byte characters', () => {
    const text = '\ufeffé\ufffd😀';
    const bytes = rs.GetInstanceRequest.encode({ app: text, instanceId: 'x' }).finish();
    assert.equal(decodeStrictUtf8((r) => rs.GetInstanceRequest.decode(r), bytes).app, text);
  });

  test('overlong encodings and encoded surrogates are not UTF-8', () => {
    for (const bad of [
      [0xc0, 0xaf],
      [0xed, 0xa0, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
      [0xe2, 0x82],
    ]) {
      const bytes = Buffer.from([0x0a, bad.length, ...bad]);
      assert.throws(() => decodeStrictUtf8((r) => rs.GetInstanceRequest.decode(r), bytes), InvalidUtf8Error);
    }
  });

  test('MAP_FIELDS names every map<string, string> field of roster.v1', () => {
    const protos = ['instance', 'registry_service', 'replication_service'].map((f) => readFileSync(new URL(`../../proto/roster/v1/${f}.proto`, import.meta.url), 'utf8'));
    const maps = protos.flatMap((p) => [...p.matchAll(/map<[^>]+>\s+(\w+)\s*=/g)].map((m) => m[1]));
    assert.deepEqual([...MAP_FIELDS].sort(), maps.sort());
  });
});
