import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Change } from '../../src/core/types.js';
import { HeartbeatRequest, HeartbeatsRequest, HeartbeatsResponse, RegisterRequest, RegisterResponse, WatchResponse } from '../../src/gen/roster/v1/registry_service.js';
import { Change as PbChange } from '../../src/gen/roster/v1/instance.js';
import { ReplicateRequest, ReplicateResponse, ReplicationAction, TaskResultCode } from '../../src/gen/roster/v1/replication_service.js';
import { Instance } from '../../src/gen/roster/v1/instance.js';
import type { ReplicationTask } from '../../src/replication/link.js';
import { changeToProto, instanceToProto, registrationFromProto } from '../../src/grpc/convert.js';
import {
  ChangeEncoder,
  encodeChange,
  encodeHeartbeatsResponse,
  encodeRegisterResponse,
  encodeReplicateRequest,
  encodeReplicateResponse,
  encodeWatchResponse,
  readHeartbeatRequest,
  readHeartbeatsRequest,
  readRegisterRequest,
  readReplicateRequest,
  readReplicateResponse,
} from '../../src/grpc/write-codec.js';

import { newRegistry, registration } from '../core/fixtures.js';
import { record, storedView, text, timestamp, view } from './arbitraries.js';

const change: fc.Arbitrary<Change> = fc.oneof(
  fc.record({ revision: timestamp, type: fc.constantFrom('ADDED' as const, 'MODIFIED' as const), instance: view }),
  fc.record({ revision: timestamp, type: fc.constant('DELETED' as const), instance: view, removal: fc.constantFrom('cancelled' as const, 'evicted' as const) }),
);

// Heartbeat batches as clients send them, plus values the fast path must hand to the generated decoder.
const heartbeat = fc.record({
  app: fc.oneof(text, fc.constant('app-1')),
  instanceId: fc.oneof(text, fc.constant('host-1:8080')),
  lastDirtyTimestamp: fc.oneof(timestamp, fc.integer({ min: Number.MIN_SAFE_INTEGER, max: -1 })),
});
const heartbeats = fc.record({ batchId: timestamp, heartbeats: fc.array(heartbeat, { maxLength: 5 }) });

/** What `decode` makes of `bytes`: the message, or the fact that it throws. */
function decodedBy<T>(decode: (input: Uint8Array) => T, bytes: Uint8Array): T | 'throws' {
  try {
    return decode(bytes);
  } catch {
    return 'throws';
  }
}

/** What the server makes of `bytes`: the hand-written reader's message, else the generated decoder's (or its refusal). */
const served =
  <T>(read: (bytes: Uint8Array) => T | undefined, decode: (bytes: Uint8Array) => T) =>
  (bytes: Uint8Array): T | 'throws' =>
    decodedBy((input) => read(input) ?? decode(input), bytes);
const generated = (bytes: Uint8Array): HeartbeatsRequest | 'throws' => decodedBy((input) => HeartbeatsRequest.decode(input), bytes);
const fast = served(readHeartbeatsRequest, (bytes) => HeartbeatsRequest.decode(bytes));

/** Any bytes, or valid ones with bytes added, cut short or with one byte changed. */
function mangledFrom(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc.tuple(valid, fc.uint8Array({ maxLength: 16 })).map(([bytes, tail]) => Buffer.concat([bytes, tail])),
    fc.tuple(valid, fc.nat()).map(([bytes, cut]) => bytes.subarray(0, cut % (bytes.length + 1))),
    fc.tuple(valid, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([encoded, at, byte]) => {
      const bytes = Buffer.from(encoded);
      if (bytes.length > 0) bytes[at % bytes.length] = byte;
      return bytes;
    }),
  );
}

test('property: Heartbeats batches decode by hand exactly as the generated decoder decodes them', () => {
  fc.assert(
    fc.property(heartbeats, (message) => {
      const bytes = HeartbeatsRequest.encode(message).finish();
      assert.deepEqual(fast(bytes), HeartbeatsRequest.decode(bytes));
    }),
    { numRuns: 2_000 },
  );
  // The common shape is read by hand.
  const batch = { batchId: 7, heartbeats: [{ app: 'app-1', instanceId: 'host-1:8080', lastDirtyTimestamp: 1_700_000_000_000 }] };
  assert.deepEqual(readHeartbeatsRequest(HeartbeatsRequest.encode(batch).finish()), batch);
});

test('property: any bytes, or a batch with extra fields, garbage or a cut: the same message or the same refusal', () => {
  const mangled = mangledFrom(heartbeats.map((m) => HeartbeatsRequest.encode(m).finish()));
  fc.assert(
    fc.property(mangled, (bytes) => {
      assert.deepEqual(fast(bytes), generated(bytes));
    }),
    { numRuns: 5_000 },
  );
});

const fastHeartbeat = served(readHeartbeatRequest, (bytes) => HeartbeatRequest.decode(bytes));

test('property: unary Heartbeat requests, valid or mangled, decode by hand exactly as the generated decoder decodes them', () => {
  const encoded = heartbeat.map((m) => HeartbeatRequest.encode(m).finish());
  fc.assert(
    fc.property(fc.oneof(encoded, mangledFrom(encoded)), (bytes) => {
      assert.deepEqual(
        fastHeartbeat(bytes),
        decodedBy((input) => HeartbeatRequest.decode(input), bytes),
      );
    }),
    { numRuns: 5_000 },
  );
  // The common shape is read by hand.
  assert.deepEqual(readHeartbeatRequest(HeartbeatRequest.encode({ app: 'app-1', instanceId: 'host-1:8080', lastDirtyTimestamp: 1_700_000_000_000 }).finish()), {
    app: 'app-1',
    instanceId: 'host-1:8080',
    lastDirtyTimestamp: 1_700_000_000_000,
  });
});

// Register requests as clients send them (ASCII or not), plus numbers the fast path must hand
// to the generated decoder (negative or 32-bit-overflowing enums and ports).
const registerRequest = fc
  .tuple(view, fc.integer({ min: -2, max: 2 ** 31 - 1 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.boolean(), fc.boolean())
  .map(([v, status, portNumber, withPort, withLease]) => {
    const instance = instanceToProto(v);
    return {
      instance: {
        ...instance,
        status: status > 5 && status < 2 ** 30 ? instance.status : status,
        port: withPort ? { number: portNumber, enabled: instance.port!.enabled } : instance.port,
        lease: withLease ? instance.lease : undefined,
      },
    } as RegisterRequest;
  });
const asciiRegister = fc.nat({ max: 100_000 }).map((i) => ({
  instance: {
    ...instanceToProto({
      record: {
        ...registration({ instanceId: `h-${i}:app:8080`, hostName: `h-${i}`, metadata: { version: '1.4.2', build: String(i), team: 't' } }),
        overriddenStatus: undefined,
        lastUpdatedTimestamp: i,
      },
      lease: { registrationTimestamp: 0, lastRenewalTimestamp: 0, evictionTimestamp: 0, serviceUpTimestamp: i },
    }),
    overriddenStatus: 0,
  },
}));

const generatedRegister = (bytes: Uint8Array): RegisterRequest | 'throws' => decodedBy((input) => RegisterRequest.decode(input), bytes);
/** The request the hand reader made, without the bytes it keeps for the answer. */
function readRegister(bytes: Uint8Array): RegisterRequest | undefined {
  const read = readRegisterRequest(bytes);
  return read && { instance: read.instance };
}
const fastRegister = served(readRegister, (bytes) => RegisterRequest.decode(bytes));

test('property: Register requests decode by hand exactly as the generated decoder decodes them', () => {
  fc.assert(
    fc.property(fc.oneof(registerRequest, asciiRegister), (message) => {
      const bytes = RegisterRequest.encode(message).finish();
      assert.deepEqual(fastRegister(bytes), generatedRegister(bytes));
      assert.deepEqual(fastRegister(Buffer.from(bytes)), generatedRegister(bytes));
    }),
    { numRuns: 2_000 },
  );
  // The common shape is read by hand.
  fc.assert(
    fc.property(asciiRegister, (message) => assert.deepEqual(readRegister(RegisterRequest.encode(message).finish()), RegisterRequest.decode(RegisterRequest.encode(message).finish()))),
    { numRuns: 200 },
  );
});

test('the repeating fields read by hand are the bytes sent, whichever strings shared their cache slots before', () => {
  // 6,000 apps, 6,000 metadata keys and 35 zones, short strings through a cache of 4,096 slots:
  // hits, misses, and slots taken over by another string (of the same length, or a prefix of it).
  const values = (i: number): { app: string; zone: string; tag: string } => ({ app: `app-${i}`, zone: `z${i % 7}${'x'.repeat(i % 5)}`, tag: `t-${(i * 7919) % 6000}` });
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 6000; i++) {
      const { app, zone, tag } = values(i);
      const message = { instance: Instance.fromPartial({ app, instanceId: `h-${i}:80`, vipAddress: `${app}.vip`, zone, region: zone.slice(0, 2), metadata: { [tag]: app } }) };
      const bytes = RegisterRequest.encode(message).finish();
      assert.deepEqual(readRegister(bytes), RegisterRequest.decode(bytes), `request ${i} of round ${round}`);
      const heartbeat = HeartbeatRequest.encode({ app: tag, instanceId: `h-${i}:80`, lastDirtyTimestamp: i }).finish();
      assert.deepEqual(readHeartbeatRequest(heartbeat), HeartbeatRequest.decode(heartbeat));
    }
  }
});

test('property: any bytes, or a Register request with extra fields, garbage or a cut: the same message or the same refusal', () => {
  const mangled = mangledFrom(fc.oneof(registerRequest, asciiRegister).map((m) => RegisterRequest.encode(m).finish()));
  fc.assert(
    fc.property(mangled, (bytes) => {
      assert.deepEqual(fastRegister(bytes), generatedRegister(bytes));
    }),
    { numRuns: 5_000 },
  );
});

// Registrations a registry accepts, in the shapes clients send: any case of app name, any
// status and overridden status sent, ports or lease left out, lease times a client should not
// send, a dirty timestamp or none.
const acceptedRegister = fc
  .record({
    i: fc.nat({ max: 20 }),
    upperApp: fc.boolean(),
    status: fc.integer({ min: 0, max: 5 }),
    overriddenStatus: fc.integer({ min: 0, max: 5 }),
    withPorts: fc.boolean(),
    lease: fc.option(
      fc.record({
        renewalIntervalSecs: fc.constantFrom(0, 10, 30),
        durationSecs: fc.constantFrom(0, 90, 3600),
        registrationTimestamp: fc.nat(),
        serviceUpTimestamp: fc.integer({ min: 0, max: 2 ** 48 }),
      }),
    ),
    lastDirtyTimestamp: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: Date.UTC(2026, 0, 1) })),
    lastUpdatedTimestamp: fc.integer({ min: 0, max: 2 ** 48 }),
    metadata: fc.dictionary(fc.constantFrom('version', 'build', 'team', 'zone'), fc.constantFrom('', '1', 'blue', 'x'.repeat(30))),
  })
  .map(({ i, upperApp, status, overriddenStatus, withPorts, lease, lastDirtyTimestamp, lastUpdatedTimestamp, metadata }) => ({
    instance: Instance.fromPartial({
      app: upperApp ? 'Billing' : 'billing',
      instanceId: `h-${i}:billing:8080`,
      hostName: `h-${i}`,
      ipAddr: `10.0.0.${i}`,
      ...(withPorts ? { port: { number: 8080, enabled: true }, securePort: { number: 8443 } } : {}),
      status,
      overriddenStatus,
      vipAddress: 'billing',
      zone: 'z1',
      metadata,
      homePageUrl: `http://h-${i}:8080/`,
      healthCheckUrl: i % 2 === 0 ? `http://10.0.0.${i}/health` : '',
      ...(lease === null ? {} : { lease }),
      lastDirtyTimestamp,
      lastUpdatedTimestamp,
    }),
  }));

test("property: a Register answer made of the request's bytes decodes to the stored record, whatever the registry kept", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(acceptedRegister, fc.constantFrom('none', 'repeat', 'override', 'clear')), { minLength: 1, maxLength: 8 }), (writes) => {
      const { registry, clock } = newRegistry();
      for (const [message, then] of writes) {
        clock.advance(1);
        const bytes = Buffer.from(RegisterRequest.encode(message).finish());
        // A repeat with the same dirty timestamp finds the stored version as new: that one answers.
        for (let send = then === 'repeat' ? 2 : 1; send > 0; send--) {
          const request = readRegisterRequest(bytes);
          assert.ok(request?.instanceBytes, 'read by hand');
          const registered = registry.register(registrationFromProto(request.instance));
          const answer = encodeRegisterResponse(registered, request);
          assert.deepEqual(RegisterResponse.decode(answer), RegisterResponse.decode(encodeRegisterResponse(registered)));
          // The request's bytes are reused unless the node kept a newer version.
          assert.equal(answer.includes(Buffer.from(request.instanceBytes)), !registered.kept);
        }
        const app = message.instance.app.toLowerCase();
        if (then === 'override') registry.setStatusOverride(app, message.instance.instanceId, 'OUT_OF_SERVICE');
        if (then === 'clear') registry.clearStatusOverride(app, message.instance.instanceId);
      }
    }),
    { numRuns: 500 },
  );
});

test('a Register request with a port sent twice is not read by hand: its answer is encoded whole', () => {
  const once = RegisterRequest.encode({ instance: Instance.fromPartial({ app: 'billing', instanceId: 'h-1', port: { number: 1, enabled: true } }) }).finish();
  // Field 1 (the instance) holding its bytes and a second port {number: 2}: ts-proto keeps the
  // last port, decoders that follow the spec merge the two ({number: 2, enabled: true}).
  const inner = Buffer.concat([Buffer.from(once.subarray(2)), Buffer.from([42, 2, 8, 2])]);
  const twice = Buffer.concat([Buffer.from([10, inner.length]), inner]);
  assert.equal(readRegisterRequest(twice), undefined);
  assert.deepEqual(RegisterRequest.decode(twice).instance?.port, { number: 2, enabled: false });
});

test('property: hand-encoded Heartbeats answers decode to the results given', () => {
  const result = fc.record({
    code: fc.integer({ min: -1, max: 16 }),
    message: fc.oneof(fc.constant(''), fc.string({ maxLength: 200 }), fc.string({ minLength: 4_001, maxLength: 4_100 })),
    status: fc.integer({ min: 0, max: 5 }),
  });
  fc.assert(
    fc.property(timestamp, fc.array(result, { maxLength: 10 }), (batchId, results) => {
      assert.deepEqual(HeartbeatsResponse.decode(encodeHeartbeatsResponse(batchId, results)), HeartbeatsResponse.decode(HeartbeatsResponse.encode({ batchId, results }).finish()));
    }),
    { numRuns: 1_000 },
  );
});

test('property: hand-encoded Register answers, changes and Watch messages decode to what the generated encoder sends', () => {
  fc.assert(
    fc.property(view, timestamp, fc.array(change, { maxLength: 4 }), timestamp, fc.boolean(), fc.boolean(), text, (v, revision, changes, watchRevision, progress, resyncRequired, nodeId) => {
      assert.deepEqual(
        RegisterResponse.decode(encodeRegisterResponse({ view: v, revision, kept: false })),
        RegisterResponse.decode(RegisterResponse.encode({ instance: instanceToProto(v), revision }).finish()),
      );
      for (const c of changes) assert.deepEqual(PbChange.decode(encodeChange(c)), PbChange.decode(PbChange.encode(changeToProto(c)).finish()));
      const bytes = encodeWatchResponse(changes.map(encodeChange), { revision: watchRevision, progress, resyncRequired, nodeId });
      const expected = WatchResponse.encode({ changes: changes.map(changeToProto), revision: watchRevision, progress, resyncRequired, nodeId }).finish();
      assert.deepEqual(WatchResponse.decode(bytes), WatchResponse.decode(expected));
    }),
    { numRuns: 300 },
  );
});

test('ChangeEncoder: one encoding per change within a turn, shared; forgotten by the next turn', async () => {
  const [c] = fc.sample(change, { numRuns: 1, seed: 7 });
  const encoder = new ChangeEncoder();
  const first = encoder.bytes(c!);
  assert.equal(encoder.bytes(c!), first, 'the same bytes object for every watcher in the turn');
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  const later = encoder.bytes(c!);
  assert.notEqual(later, first, 'encoded again in a later turn');
  assert.deepEqual(later, first);
});

test('ChangeEncoder: a turn of changes in revision order shares each one; an older or a different change with a taken revision is encoded alone', async () => {
  const [c] = fc.sample(change, { numRuns: 1, seed: 11 });
  const at = (revision: number): Change => ({ ...c!, revision });
  await new Promise((resolve) => setImmediate(resolve));
  const encoder = new ChangeEncoder();
  const run = [at(1_000), at(1_001), at(1_005)];
  const first = run.map((x) => encoder.bytes(x));
  for (const [i, x] of run.entries()) assert.equal(encoder.bytes(x), first[i]);
  const header = { revision: 0, progress: false, resyncRequired: false, nodeId: '' };
  assert.deepEqual(
    WatchResponse.decode(encodeWatchResponse(first, header)).changes.map((x) => x.revision),
    [1_000, 1_001, 1_005],
  );
  const replayed = at(999);
  assert.notEqual(encoder.bytes(replayed), encoder.bytes(replayed), 'before the turn: not kept');
  const impostor = at(1_001);
  const own = encoder.bytes(impostor);
  assert.notEqual(own, first[1]);
  assert.deepEqual(own, first[1]);
});

// --- the Replicate stream ---

const NO_LEASE = { registrationTimestamp: 0, lastRenewalTimestamp: 0, evictionTimestamp: 0, serviceUpTimestamp: 0 };
const PB_ACTION = { register: ReplicationAction.REPLICATION_ACTION_REGISTER, heartbeat: ReplicationAction.REPLICATION_ACTION_HEARTBEAT, cancel: ReplicationAction.REPLICATION_ACTION_CANCEL };

// Tasks as a node sends them: registers of plain or stored records, heartbeats and cancels.
const task: fc.Arbitrary<ReplicationTask> = fc.oneof(
  fc.record({
    action: fc.constant('register' as const),
    record: fc.oneof(
      record,
      storedView.map((v) => v.record),
    ),
    originTimestamp: timestamp,
  }),
  fc.record({ action: fc.constantFrom('heartbeat' as const, 'cancel' as const), app: text, instanceId: text, lastDirtyTimestamp: timestamp, originTimestamp: timestamp }),
);

/** The generated message a task stands for. */
function taskMessage(t: ReplicationTask) {
  const instance =
    t.action === 'register' ? instanceToProto({ record: t.record, lease: NO_LEASE }) : Instance.fromPartial({ app: t.app, instanceId: t.instanceId, lastDirtyTimestamp: t.lastDirtyTimestamp });
  return { action: PB_ACTION[t.action], instance, originTimestamp: t.originTimestamp };
}

test('property: hand-encoded Replicate batches decode, by the generated decoder, to the tasks given', () => {
  fc.assert(
    fc.property(timestamp, fc.array(task, { maxLength: 6 }), (batchId, tasks) => {
      assert.deepEqual(ReplicateRequest.decode(encodeReplicateRequest(batchId, tasks)), { batchId, tasks: tasks.map(taskMessage) });
    }),
    { numRuns: 1_000 },
  );
});

// Batches as peers could send them: the tasks above, plus actions, times and instances the fast
// path must hand to the generated decoder (unknown or negative actions, negative times).
const replicateRequest = fc.record({
  batchId: timestamp,
  tasks: fc.array(
    fc.oneof(
      task.map(taskMessage),
      fc.record({
        action: fc.integer({ min: -3, max: 2 ** 31 - 1 }),
        instance: fc.option(view.map(instanceToProto), { nil: undefined }),
        originTimestamp: fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
      }),
    ),
    { maxLength: 5 },
  ),
});
const generatedReplicate = (bytes: Uint8Array): ReplicateRequest | 'throws' => decodedBy((input) => ReplicateRequest.decode(input), bytes);
const fastReplicate = served(readReplicateRequest, (bytes) => ReplicateRequest.decode(bytes));

test('property: Replicate batches, valid or mangled, decode by hand exactly as the generated decoder decodes them', () => {
  const encoded = replicateRequest.map((m) => ReplicateRequest.encode(m).finish());
  fc.assert(
    fc.property(fc.oneof(encoded, mangledFrom(encoded)), (bytes) => {
      assert.deepEqual(fastReplicate(bytes), generatedReplicate(bytes));
    }),
    { numRuns: 5_000 },
  );
  // The common shape is read by hand: what encodeReplicateRequest sends of ASCII records.
  const heartbeatTask: ReplicationTask = { action: 'heartbeat', app: 'billing', instanceId: 'h-1:billing:8080', lastDirtyTimestamp: 1_700_000_000_000, originTimestamp: 1_700_000_000_123 };
  const registerTask: ReplicationTask = {
    action: 'register',
    record: { ...registration({ instanceId: 'h-2:billing:8080', hostName: 'h-2' }), overriddenStatus: undefined, lastUpdatedTimestamp: 5 },
    originTimestamp: 9,
  };
  const bytes = encodeReplicateRequest(3, [heartbeatTask, registerTask]);
  assert.deepEqual(readReplicateRequest(bytes), ReplicateRequest.decode(bytes));
});

const taskResult = fc.oneof(fc.record({ code: fc.integer({ min: 0, max: 5 }) }), fc.record({ code: fc.constant(TaskResultCode.TASK_RESULT_CODE_CONFLICT), instance: view.map(instanceToProto) }));

test('property: hand-encoded Replicate answers decode to the results given, and peers read them back', () => {
  const replicateResponse = fc.record({ batchId: timestamp, results: fc.array(taskResult, { maxLength: 6 }) });
  const generatedResponse = (bytes: Uint8Array): ReplicateResponse | 'throws' => decodedBy((input) => ReplicateResponse.decode(input), bytes);
  const fastResponse = served(readReplicateResponse, (bytes) => ReplicateResponse.decode(bytes));
  fc.assert(
    fc.property(replicateResponse, (message) => {
      const bytes = encodeReplicateResponse(message.batchId, message.results);
      assert.deepEqual(ReplicateResponse.decode(bytes), ReplicateResponse.fromPartial(message));
      assert.deepEqual(fastResponse(bytes), generatedResponse(bytes));
    }),
    { numRuns: 2_000 },
  );
  const encoded = replicateResponse.map((m) => ReplicateResponse.encode(m).finish());
  fc.assert(
    fc.property(mangledFrom(encoded), (bytes) => {
      assert.deepEqual(fastResponse(bytes), generatedResponse(bytes));
    }),
    { numRuns: 5_000 },
  );
  // Codes only are read by hand.
  const ok = { batchId: 12, results: [{ code: TaskResultCode.TASK_RESULT_CODE_OK }, { code: TaskResultCode.TASK_RESULT_CODE_NOT_FOUND }] };
  assert.deepEqual(readReplicateResponse(encodeReplicateResponse(ok.batchId, ok.results)), ReplicateResponse.fromPartial(ok));
});
