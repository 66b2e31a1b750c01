import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import { Registry } from '../../src/core/registry.js';
import type { InstanceRecord } from '../../src/core/types.js';
import { PeerDispatcher } from '../../src/replication/dispatcher.js';
import type { ReplicationTask } from '../../src/replication/link.js';
import { registration } from '../core/fixtures.js';
import { ManualLink } from './harness.js';

function setup(options: ConstructorParameters<typeof PeerDispatcher>[3] = {}) {
  const clock = new FakeClock();
  const registry = new Registry({ clock });
  const link = new ManualLink();
  const dispatcher = new PeerDispatcher(link, registry, clock, { random: () => 1, ...options });
  const open = (): void => link.handlers!.onOpen();
  return { clock, registry, link, dispatcher, open };
}

const heartbeat = (id: string, dirty = 1_000): ReplicationTask => ({
  action: 'heartbeat',
  app: 'billing',
  instanceId: id,
  lastDirtyTimestamp: dirty,
  originTimestamp: 0,
});

const record = (overrides: Partial<InstanceRecord> = {}): InstanceRecord => ({
  ...registration(),
  overriddenStatus: undefined,
  lastUpdatedTimestamp: 0,
  ...overrides,
});

describe('per-peer dispatcher', () => {
  test('dedupe in place: a newer task with the same key replaces the pending one, keeping its place', () => {
    const { dispatcher, link, clock, open } = setup();
    dispatcher.start();
    dispatcher.enqueue(heartbeat('a', 1));
    dispatcher.enqueue(heartbeat('b', 1));
    dispatcher.enqueue(heartbeat('a', 2));
    open();
    clock.advance(5);
    assert.equal(link.batches.length, 1);
    assert.deepEqual(
      link.batches[0]!.tasks.map((t) => t.action === 'heartbeat' && [t.instanceId, t.lastDirtyTimestamp]),
      [
        ['a', 2],
        ['b', 1],
      ],
    );
  });

  test('flushDelayMs 0: tasks queued in one turn leave together at the end of it, no timer', async () => {
    const { dispatcher, link, clock, open } = setup({ flushDelayMs: 0 });
    dispatcher.start();
    open();
    for (const id of ['a', 'b', 'c']) dispatcher.enqueue(heartbeat(id));
    assert.equal(link.batches.length, 0, 'nothing leaves inside the turn that queued it');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(link.batches.length, 1);
    assert.deepEqual(
      link.batches[0]!.tasks.map((t) => t.action === 'heartbeat' && t.instanceId),
      ['a', 'b', 'c'],
    );
    assert.equal(clock.pendingTimers, 0, 'the flush used no clock timer');
    dispatcher.enqueue(heartbeat('d'));
    dispatcher.stop();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(link.batches.length, 1, 'a stopped dispatcher flushes nothing');
  });

  test('drop-oldest: a full queue drops its oldest task and counts it', () => {
    const { dispatcher, link, clock, open } = setup({ maxQueue: 3 });
    dispatcher.start();
    for (const id of ['a', 'b', 'c', 'd']) dispatcher.enqueue(heartbeat(id));
    assert.equal(dispatcher.stats().dropped, 1);
    open();
    clock.advance(5);
    assert.deepEqual(
      link.batches[0]!.tasks.map((t) => t.action === 'heartbeat' && t.instanceId),
      ['b', 'c', 'd'],
    );
  });

  test('batches hold at most maxBatch tasks and at most maxBatchesInFlight are unanswered', () => {
    const { dispatcher, link, clock, open } = setup({ maxBatch: 250, maxBatchesInFlight: 2 });
    dispatcher.start();
    open();
    for (let i = 0; i < 1000; i++) dispatcher.enqueue(heartbeat(`i${i}`));
    clock.advance(5);
    assert.deepEqual(
      link.batches.map((b) => b.tasks.length),
      [250, 250],
    );
    link.answer(
      link.batches[0]!.batchId,
      link.batches[0]!.tasks.map(() => ({ code: 'ok' })),
    );
    clock.advance(5);
    assert.equal(link.batches.length, 3);
    assert.equal(dispatcher.stats().inFlight, 500);
  });

  test('expiry: a heartbeat older than one renewal interval and a cancel older than 30 s are not sent', () => {
    const { dispatcher, link, clock, open } = setup();
    dispatcher.start();
    dispatcher.enqueue(heartbeat('a'));
    dispatcher.enqueue({ action: 'cancel', app: 'billing', instanceId: 'b', lastDirtyTimestamp: 1, originTimestamp: 0 });
    clock.advance(31_000);
    dispatcher.enqueue(heartbeat('c'));
    open();
    clock.advance(5);
    assert.equal(dispatcher.stats().expired, 2);
    assert.deepEqual(
      link.batches[0]!.tasks.map((t) => t.action === 'heartbeat' && t.instanceId),
      ['c'],
    );
  });

  test('404→register: a heartbeat the peer does not know is followed by a register of the local record', () => {
    const { dispatcher, link, clock, open, registry } = setup();
    registry.register(registration({ instanceId: 'a' }));
    dispatcher.start();
    open();
    dispatcher.enqueue(heartbeat('a'));
    clock.advance(5);
    link.answer(link.batches[0]!.batchId, [{ code: 'not_found' }]);
    clock.advance(5);
    const second = link.batches[1]!.tasks[0]!;
    assert.equal(second.action, 'register');
    assert.equal(second.action === 'register' && second.record.instanceId, 'a');
  });

  test('conflict→apply: the peer’s newer record is applied locally as a replicated write', () => {
    const clock = new FakeClock();
    const writes: unknown[] = [];
    const registry = new Registry({ clock, onLocalWrite: (w) => writes.push(w) });
    registry.register(registration({ instanceId: 'a', lastDirtyTimestamp: 1_000 }));
    writes.length = 0;
    const link = new ManualLink();
    const dispatcher = new PeerDispatcher(link, registry, clock);
    dispatcher.start();
    link.handlers!.onOpen();
    dispatcher.enqueue(heartbeat('a'));
    clock.advance(5);
    link.answer(link.batches[0]!.batchId, [{ code: 'conflict', record: record({ instanceId: 'a', lastDirtyTimestamp: 2_000, hostName: 'newer' }) }]);
    assert.equal(registry.get('billing', 'a').record.hostName, 'newer');
    assert.deepEqual(writes, [], 'a replicated write is never replicated again');
  });

  test('congestion pause: an overloaded answer holds the peer for about a second, then resends', () => {
    const { dispatcher, link, clock, open } = setup();
    dispatcher.start();
    open();
    dispatcher.enqueue(heartbeat('a'));
    clock.advance(5);
    link.answer(link.batches[0]!.batchId, [{ code: 'overloaded' }]);
    clock.advance(990);
    assert.equal(link.batches.length, 1);
    clock.advance(20);
    assert.equal(link.batches.length, 2);
    assert.deepEqual(link.batches[1]!.tasks, link.batches[0]!.tasks);
  });

  test('reconnect backoff: exponential from 100 ms to 30 s with jitter, unanswered tasks resent', () => {
    const { dispatcher, link, clock, open } = setup({ random: () => 1 });
    dispatcher.start();
    open();
    dispatcher.enqueue(heartbeat('a'));
    clock.advance(5);
    const delays: number[] = [];
    for (let i = 0; i < 12; i++) {
      const before = link.opened;
      const started = clock.now();
      link.handlers!.onClose({ kind: 'unavailable', message: 'gone' });
      while (link.opened === before) clock.advance(1);
      delays.push(clock.now() - started);
    }
    assert.deepEqual(delays.slice(0, 4), [100, 200, 400, 800]);
    assert.equal(Math.max(...delays), 30_000);
    assert.equal(dispatcher.stats().retries, 12);
    open();
    clock.advance(5);
    assert.equal(link.batches.at(-1)!.tasks[0]!.action, 'heartbeat', 'the unanswered heartbeat is resent');
  });

  test('the reconnect count counts reconnects: a stream that opens again, not each failed attempt', () => {
    const { dispatcher, link, clock, open } = setup();
    dispatcher.start();
    for (let i = 0; i < 5; i++) {
      // The peer is down: every attempt fails before the stream opens.
      const before = link.opened;
      link.handlers!.onClose({ kind: 'unavailable', message: 'connection refused' });
      while (link.opened === before) clock.advance(1);
    }
    assert.deepEqual([dispatcher.stats().retries, dispatcher.stats().reconnects], [5, 0], 'never open yet: no reconnect');
    open();
    assert.equal(dispatcher.stats().reconnects, 0, 'the first open is a connect');
    const before = link.opened;
    link.handlers!.onClose({ kind: 'unavailable', message: 'gone' });
    while (link.opened === before) clock.advance(1);
    open();
    assert.equal(dispatcher.stats().reconnects, 1);
  });

  test('jitter spreads reconnects between half and all of the backoff ceiling', () => {
    const { dispatcher, link, clock } = setup({ random: () => 0 });
    dispatcher.start();
    link.handlers!.onClose({ kind: 'unavailable', message: 'gone' });
    clock.advance(49);
    assert.equal(link.opened, 1);
    clock.advance(1);
    assert.equal(link.opened, 2);
  });

  test('a peer that is reachable again is redialled at once, not after the grown backoff', () => {
    const { dispatcher, link, clock } = setup({ random: () => 1 });
    dispatcher.start();
    for (let i = 0; i < 10; i++) {
      const before = link.opened;
      link.handlers!.onClose({ kind: 'unavailable', message: 'partitioned' });
      while (link.opened === before) clock.advance(10);
    }
    link.handlers!.onClose({ kind: 'unavailable', message: 'partitioned' });
    const before = link.opened;
    clock.advance(5_000);
    assert.equal(link.opened, before, 'still backing off (the ceiling is now 30 s)');
    link.reachable!();
    assert.equal(link.opened, before + 1);
    assert.equal(link.reachable, undefined, 'the watch is cancelled once redialled');
    clock.advance(60_000);
    assert.equal(link.opened, before + 1, 'the backoff timer was cancelled too');
  });
  test('poison: a task in flight on three broken streams in a row is dropped and counted, the others resent', () => {
    const { dispatcher, link, clock, open } = setup({ random: () => 1 });
    dispatcher.start();
    open();
    dispatcher.enqueue(heartbeat('poison'));
    clock.advance(5);
    for (let failure = 1; failure <= 3; failure++) {
      assert.ok(
        link.batches.at(-1)!.tasks.some((t) => t.action === 'heartbeat' && t.instanceId === 'poison'),
        `sent again after ${failure - 1} failures`,
      );
      link.handlers!.onClose({ kind: 'unavailable', message: 'stream reset' });
      dispatcher.enqueue(heartbeat(`fresh-${failure}`));
      const opened = link.opened;
      while (link.opened === opened) clock.advance(1);
      open();
      clock.advance(5);
    }
    assert.equal(dispatcher.stats().poisoned, 1);
    assert.deepEqual(
      link.batches.at(-1)!.tasks.map((t) => t.action === 'heartbeat' && t.instanceId),
      ['fresh-1', 'fresh-2', 'fresh-3'],
      'the poison task is not sent again; the others are',
    );
  });
});
