import assert from 'node:assert/strict';
import type http2 from 'node:http2';
import { afterEach, beforeEach, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { FakeClock } from '../../src/core/clock.js';
import { Registry } from '../../src/core/registry.js';
import * as pb from '../../src/gen/roster/v1/replication_service.js';
import { recordToProto } from '../../src/grpc/convert.js';
import { createReplicationService } from '../../src/grpc/replication-service.js';
import { startGrpcServer, type GrpcServerHandle } from '../../src/grpc/server.js';
import { registration } from '../core/fixtures.js';
import { silentLogger, WAIT_MS } from '../grpc/helpers.js';
import { connect, grpcFrame, openCall } from '../grpc/raw-http2.js';

const REPLICATE = pb.ReplicationServiceService.replicate.path;
const STALL_MS = 30_000;
const BATCHES = 400;
const TASKS_PER_BATCH = 50;

/** Polls `probe` every 20 ms until it holds, failing after WAIT_MS. */
async function until(what: string, probe: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!probe()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Resolves once `read()` has returned the same value for `quietMs` (bounded by WAIT_MS). */
async function settled(read: () => number, quietMs = 300): Promise<number> {
  const deadline = Date.now() + WAIT_MS;
  let last = read();
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    if (Date.now() > deadline) assert.fail('value never settled');
    await new Promise((resolve) => setTimeout(resolve, 20));
    const now = read();
    if (now !== last) [last, since] = [now, Date.now()];
  }
  return last;
}

/** One encoded Replicate batch registering `TASKS_PER_BATCH` distinct instances. */
function batch(n: number): Buffer {
  const tasks = Array.from({ length: TASKS_PER_BATCH }, (_, i) => ({
    action: pb.ReplicationAction.REPLICATION_ACTION_REGISTER,
    instance: recordToProto({ ...registration({ instanceId: `b${n}-${i}` }), overriddenStatus: undefined, lastUpdatedTimestamp: 0 }),
    originTimestamp: 0,
  }));
  return grpcFrame(pb.ReplicateRequest.encode({ batchId: n, tasks }).finish());
}

describe('Replicate backpressure: a peer that sends batches and never reads its results', () => {
  let clock: FakeClock;
  let registry: Registry;
  let server: GrpcServerHandle;
  let session: http2.ClientHttp2Session;

  beforeEach(async () => {
    clock = new FakeClock(1_764_547_200_000);
    registry = new Registry({ clock });
    const logger = silentLogger();
    const replication = createReplicationService({ registry, nodeId: 'n1', clock, logger });
    server = await startGrpcServer({
      registry,
      clock,
      logger,
      replicateStallMs: STALL_MS,
      extraServices: [{ definition: pb.ReplicationServiceService, implementation: replication.implementation as unknown as grpc.UntypedServiceImplementation }],
    });
    // A small receive window, so the node's results fill it after a few batches.
    session = connect(server.port, { initialWindowSize: 4096 });
  });
  afterEach(async () => {
    session.destroy();
    await server.shutdown(0);
  });

  /** Opens a Replicate stream that does not read, and writes every batch into it at once. */
  const flood = (): http2.ClientHttp2Stream => {
    const stream = openCall(session, REPLICATE);
    stream.pause();
    stream.on('error', () => undefined);
    for (let n = 1; n <= BATCHES; n++) stream.write(batch(n));
    return stream;
  };

  test('the node stops reading its batches once its results wait, and still serves others', async () => {
    flood();
    const applied = await settled(() => registry.stats().size);
    const read = applied / TASKS_PER_BATCH;
    assert.ok(read >= 1, 'the node read no batch at all');
    // The 4 KiB window takes a few dozen small answers; the node then holds at most 4 responses.
    assert.ok(read < BATCHES / 2, `the node read ${read} of ${BATCHES} batches from a peer that reads nothing`);

    // Another peer on its own connection is served meanwhile.
    const other = new pb.ReplicationServiceClient(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    try {
      const digest = await new Promise<pb.DigestResponse>((resolve, reject) =>
        other.digest({}, new grpc.Metadata(), { deadline: Date.now() + WAIT_MS }, (err, res) => (err ? reject(err) : resolve(res))),
      );
      assert.equal(digest.apps[0]?.count, applied);
    } finally {
      other.close();
    }
  });

  test('reading resumes as soon as the peer reads: every batch is applied and answered in order', async () => {
    const stream = flood();
    await settled(() => registry.stats().size);
    const answered: number[] = [];
    let pending = Buffer.alloc(0);
    stream.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        const length = pending.readUInt32BE(1);
        answered.push(Number(pb.ReplicateResponse.decode(pending.subarray(5, 5 + length)).batchId));
        pending = pending.subarray(5 + length);
      }
    });
    stream.resume();
    await until('every batch answered', () => answered.length === BATCHES);
    assert.deepEqual(
      answered,
      Array.from({ length: BATCHES }, (_, i) => i + 1),
    );
    assert.equal(registry.stats().size, BATCHES * TASKS_PER_BATCH);
  });

  test('a peer that reads nothing for the stall time has its connection closed', async () => {
    flood();
    await settled(() => registry.stats().size);
    let closed = false;
    session.once('close', () => (closed = true));
    clock.advance(STALL_MS - 1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(!closed, 'cut before the stall time');
    clock.advance(1);
    await until('the connection closed', () => closed);
  });
});
