import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { status, type ClientDuplexStream } from '@grpc/grpc-js';
import { FakeClock } from '../../src/core/clock.js';
import { HeartbeatStream, RosterClient } from '../../src/client/index.js';
import type { RosterNode } from '../../src/cli/node.js';
import { InstanceStatus } from '../../src/gen/roster/v1/instance.js';
import type { HeartbeatsRequest, HeartbeatsResponse } from '../../src/gen/roster/v1/registry_service.js';
import { startTestNode, TcpProxy, waitFor } from './harness.js';

let node: RosterNode;
let client: RosterClient;
const INSTANCES = 2000;

before(async () => {
  node = await startTestNode({ writesPerSecond: 1_000_000, writeBurst: 1_000_000 });
  client = new RosterClient(`127.0.0.1:${node.grpcPort}`);
  for (let i = 0; i < INSTANCES; i += 200) {
    await Promise.all(Array.from({ length: 200 }, (_, k) => client.register({ app: 'fleet', instanceId: `f-${i + k}`, hostName: 'h', status: InstanceStatus.INSTANCE_STATUS_UP })));
  }
});

after(async () => {
  client.close();
  await node.stop();
});

/** Counts batches written and answered on the wire, to check the window from outside. */
class CountingClient extends RosterClient {
  written = 0;
  answered = 0;
  maxOutstanding = 0;
  batchSizes: number[] = [];

  override openHeartbeats(): ClientDuplexStream<HeartbeatsRequest, HeartbeatsResponse> {
    const call = super.openHeartbeats();
    const write = call.write.bind(call) as (chunk: HeartbeatsRequest) => boolean;
    call.write = ((chunk: HeartbeatsRequest) => {
      this.written++;
      this.batchSizes.push(chunk.heartbeats.length);
      this.maxOutstanding = Math.max(this.maxOutstanding, this.written - this.answered);
      return write(chunk);
    }) as typeof call.write;
    call.on('data', () => this.answered++);
    return call;
  }
}

test('many renewals on one stream, each with its own result, within the window', async () => {
  const counting = new CountingClient(`127.0.0.1:${node.grpcPort}`);
  const stream = new HeartbeatStream(counting, { maxBatch: 100, window: 3 });
  try {
    const rounds = 5;
    const pending = [];
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < INSTANCES; i++) pending.push(stream.heartbeat('fleet', `f-${i}`));
    }
    pending.push(stream.heartbeat('fleet', 'nobody'));
    pending.push(stream.heartbeat('bad app!', 'x'));
    assert.ok(stream.queued > 0 && stream.inFlightBatches === 0, 'nothing leaves before the next tick');
    const results = await Promise.all(pending);

    const ok = results.slice(0, rounds * INSTANCES);
    assert.ok(ok.every((r) => r.code === status.OK && r.status === InstanceStatus.INSTANCE_STATUS_UP));
    assert.equal(results.at(-2)?.code, status.NOT_FOUND);
    assert.equal(results.at(-1)?.code, status.INVALID_ARGUMENT);
    assert.match(results.at(-1)?.message ?? '', /app/);

    assert.ok(counting.maxOutstanding <= 3, `window exceeded: ${counting.maxOutstanding}`);
    assert.equal(counting.maxOutstanding, 3, 'the window was used');
    assert.ok(counting.batchSizes.every((n) => n >= 1 && n <= 100));
    assert.equal(
      counting.batchSizes.reduce((a, b) => a + b, 0),
      rounds * INSTANCES + 2,
    );
    assert.equal(stream.inFlightBatches, 0);
    assert.equal(stream.queued, 0);
  } finally {
    await stream.close();
    counting.close();
  }
});

test('a queue beyond maxQueued is refused with RESOURCE_EXHAUSTED', async () => {
  const stream = new HeartbeatStream(client, { maxQueued: 3 });
  try {
    const results = await Promise.all([0, 1, 2, 3].map((i) => stream.heartbeat('fleet', `f-${i}`)));
    assert.deepEqual(
      results.map((r) => r.code),
      [status.OK, status.OK, status.OK, status.RESOURCE_EXHAUSTED],
    );
  } finally {
    await stream.close();
  }
});

test('a broken stream fails its in-flight heartbeats and reconnects for the rest', async () => {
  const proxy = await TcpProxy.start(node.grpcPort);
  const viaProxy = new RosterClient(proxy.address);
  const clock = new FakeClock();
  const stream = new HeartbeatStream(viaProxy, { clock, backoff: { initialMs: 50, maxMs: 50 } });
  try {
    assert.equal((await stream.heartbeat('fleet', 'f-1')).code, status.OK);

    proxy.hold();
    const pending = stream.heartbeat('fleet', 'f-2');
    await waitFor('the batch to be in flight', () => stream.inFlightBatches === 1);
    proxy.cut(true);
    const lost = await pending;
    assert.notEqual(lost.code, status.OK);
    assert.ok(lost.message.length > 0);
    assert.equal(clock.pendingTimers, 1, 'a reconnect is scheduled');

    const queued = stream.heartbeat('fleet', 'f-3');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(stream.queued, 1, 'held while the stream is down');
    assert.equal(stream.inFlightBatches, 0);
    proxy.accept();
    clock.advance(50);
    const first = await queued;
    // grpc-js may fail a stream or two while its channel reconnects; each failure backs off again.
    const result = await waitFor(
      'a heartbeat through a new stream',
      async () => {
        clock.advance(50);
        const r = await stream.heartbeat('fleet', 'f-3');
        return r.code === status.OK ? r : undefined;
      },
      10_000,
    );
    assert.equal(result.status, InstanceStatus.INSTANCE_STATUS_UP);
    assert.ok(first.code === status.OK || first.code === status.UNAVAILABLE, `unexpected ${status[first.code]}`);
  } finally {
    await stream.close();
    viaProxy.close();
    await proxy.close();
  }
});

test('close answers late heartbeats with CANCELLED', async () => {
  const stream = new HeartbeatStream(client);
  const before = stream.heartbeat('fleet', 'f-1');
  await stream.close();
  assert.equal((await before).code, status.OK, 'queued work is flushed before closing');
  assert.equal((await stream.heartbeat('fleet', 'f-1')).code, status.CANCELLED);
});
