import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { SystemClock } from '../../src/core/clock.js';
import { Registry } from '../../src/core/registry.js';
import * as pb from '../../src/gen/roster/v1/replication_service.js';
import { MAX_SNAPSHOT_APPS, recordToProto } from '../../src/grpc/convert.js';
import { createReplicationService } from '../../src/grpc/replication-service.js';
import { startGrpcServer, type GrpcServerHandle } from '../../src/grpc/server.js';
import { registration } from '../core/fixtures.js';

const logger = pino({ level: 'silent' });
const DEADLINE_MS = 10_000;

/** A peer that sends whatever it likes: the raw generated client, no dispatcher. */
describe('a hostile or broken peer cannot hurt a node', () => {
  let registry: Registry;
  let server: GrpcServerHandle;
  let client: pb.ReplicationServiceClient;

  before(async () => {
    const clock = new SystemClock();
    registry = new Registry({ clock });
    server = await startGrpcServer({
      registry,
      logger,
      extraServices: [
        {
          definition: pb.ReplicationServiceService,
          implementation: createReplicationService({ registry, nodeId: 'n1', clock, logger }).implementation as unknown as grpc.UntypedServiceImplementation,
        },
      ],
    });
    client = new pb.ReplicationServiceClient(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client.close();
    await server.shutdown(0);
  });

  const snapshot = (apps: string[]): Promise<pb.SnapshotResponse[]> =>
    new Promise((resolve, reject) => {
      const chunks: pb.SnapshotResponse[] = [];
      const call = client.snapshot({ apps }, { deadline: Date.now() + DEADLINE_MS });
      call.on('data', (c: pb.SnapshotResponse) => chunks.push(c));
      call.on('error', reject);
      call.on('end', () => resolve(chunks));
    });

  /** Sends one batch on a fresh Replicate stream; resolves with the results or the stream's error. */
  const replicateOnce = (tasks: pb.ReplicationTask[]): Promise<pb.TaskResult[] | grpc.ServiceError> =>
    new Promise((resolve) => {
      const call = client.replicate({ deadline: Date.now() + DEADLINE_MS });
      call.on('data', (r: pb.ReplicateResponse) => {
        resolve(r.results);
        call.end();
      });
      call.on('error', (err: grpc.ServiceError) => resolve(err));
      call.write({ batchId: 1, tasks });
    });

  const registerTask = (instanceId: string): pb.ReplicationTask => ({
    action: pb.ReplicationAction.REPLICATION_ACTION_REGISTER,
    instance: recordToProto({ ...registration({ instanceId }), overriddenStatus: undefined, lastUpdatedTimestamp: 0 }),
    originTimestamp: 0,
  });

  test('a Snapshot that names one app 300,000 times is refused with INVALID_ARGUMENT naming apps', async () => {
    registry.register(registration({ instanceId: 'a' }));
    const refused = await snapshot(Array.from({ length: 300_000 }, () => 'billing')).then(
      () => assert.fail('accepted'),
      (err: grpc.ServiceError) => err,
    );
    assert.equal(refused.code, grpc.status.INVALID_ARGUMENT);
    assert.match(refused.details, /^apps: at most 10000 names/);
  });

  test('names repeated within the bound are answered once each', async () => {
    const chunks = await snapshot(Array.from({ length: MAX_SNAPSHOT_APPS }, (_, i) => (i % 2 ? 'BILLING' : 'billing')));
    const ids = chunks.flatMap((c) => c.records.map((r) => r.instance!.instanceId));
    assert.deepEqual(ids, ['a']);
  });

  test('a Snapshot naming an invalid app is refused, naming the index', async () => {
    const refused = await snapshot(['billing', 'no spaces']).then(
      () => assert.fail('accepted'),
      (err: grpc.ServiceError) => err,
    );
    assert.equal(refused.code, grpc.status.INVALID_ARGUMENT);
    assert.match(refused.details, /^apps\[1\]/);
  });

  test("a batch far above the senders' 250 tasks ends the stream with INVALID_ARGUMENT and applies nothing", async () => {
    const before = registry.stats().size;
    const answer = await replicateOnce(Array.from({ length: 1001 }, (_, i) => registerTask(`big-${i}`)));
    assert.ok(!Array.isArray(answer));
    assert.equal(answer.code, grpc.status.INVALID_ARGUMENT);
    assert.match(answer.details, /^tasks: at most 1000 per batch/);
    assert.equal(registry.stats().size, before);
  });

  test('one task the node cannot apply gets its own INVALID result; the rest of the batch and the stream are fine', async () => {
    const applyRecord = registry.applyRecord.bind(registry);
    registry.applyRecord = (record, lease) => {
      if (record.instanceId === 'bad') throw new RangeError('injected fault');
      return applyRecord(record, lease);
    };
    try {
      const answer = await replicateOnce([registerTask('ok-1'), registerTask('bad'), registerTask('ok-2')]);
      assert.ok(Array.isArray(answer), `stream failed: ${String(answer)}`);
      assert.deepEqual(
        answer.map((r) => r.code),
        [pb.TaskResultCode.TASK_RESULT_CODE_OK, pb.TaskResultCode.TASK_RESULT_CODE_INVALID, pb.TaskResultCode.TASK_RESULT_CODE_OK],
      );
      assert.ok(registry.record('billing', 'ok-1') && registry.record('billing', 'ok-2'));
      assert.equal(registry.record('billing', 'bad'), undefined);
    } finally {
      registry.applyRecord = applyRecord;
    }
  });
});
