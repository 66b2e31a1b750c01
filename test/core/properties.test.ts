import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { LeaseHeap } from '../../src/core/lease-heap.js';
import { newRegistry, registration } from './fixtures.js';

test('property: the lease heap finds exactly the due keys and agrees with a model', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), key: fc.integer({ min: 0, max: 30 }), deadline: fc.integer({ min: 0, max: 1000 }) }),
    fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 30 }) }),
    fc.record({ kind: fc.constant('pop' as const), now: fc.integer({ min: 0, max: 1000 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const heap = new LeaseHeap<{ name: string; deadline: number; heapIndex: number }>();
      const items = Array.from({ length: 31 }, (_, i) => ({ name: `k${i}`, deadline: 0, heapIndex: -1 }));
      const model = new Map<string, number>();
      for (const o of ops) {
        if (o.kind === 'set') {
          heap.set(items[o.key]!, o.deadline);
          model.set(`k${o.key}`, o.deadline);
        } else if (o.kind === 'delete') {
          assert.equal(heap.delete(items[o.key]!), model.delete(`k${o.key}`));
        } else {
          // What an eviction pass does: find the due items, then delete them one by one.
          const due = heap.collectDue(o.now);
          const expected = [...model].filter(([, d]) => d <= o.now).map(([k]) => k).sort();
          assert.deepEqual(due.map((item) => item.name).sort(), expected);
          for (const item of due) {
            assert.equal(heap.delete(item), true);
            model.delete(item.name);
          }
        }
        assert.equal(heap.size, model.size);
        const min = Math.min(...model.values());
        assert.equal(heap.peek()?.deadline, model.size === 0 ? undefined : min);
      }
    }),
    { numRuns: 300 },
  );
});

test('property: an expired or evicted lease cannot be renewed', () => {
  const step = fc.oneof(
    fc.record({ kind: fc.constant('advance' as const), seconds: fc.integer({ min: 1, max: 60 }) }),
    fc.record({ kind: fc.constant('beat' as const) }),
  );
  fc.assert(
    fc.property(fc.array(step, { maxLength: 60 }), fc.boolean(), (steps, preserve) => {
      const { registry, clock } = newRegistry({ selfPreservation: preserve });
      registry.register(registration({ durationSecs: 90 }));
      let lastRenewal = clock.now();
      let dead = false;
      for (const s of steps) {
        if (s.kind === 'advance') {
          clock.advance(s.seconds * 1000);
          continue;
        }
        const outcome = registry.heartbeat('billing', 'i-1');
        const expired = clock.now() - lastRenewal >= 90_000;
        if (expired || dead) {
          assert.equal(outcome.kind, 'not_found');
          dead = true;
        } else {
          assert.equal(outcome.kind, 'ok');
          lastRenewal = clock.now();
        }
      }
    }),
    { numRuns: 300 },
  );
});

test('property: the dirty-timestamp rule makes register order-independent', () => {
  const version = fc.record({
    lastDirtyTimestamp: fc.integer({ min: 1, max: 5 }),
    hostName: fc.constantFrom('a', 'b', 'c'),
    status: fc.constantFrom('UP' as const, 'DOWN' as const, 'STARTING' as const),
    metadata: fc.dictionary(fc.constantFrom('x', 'y'), fc.constantFrom('1', '2')),
  });
  fc.assert(
    fc.property(fc.array(version, { minLength: 1, maxLength: 8 }).chain((vs) => fc.tuple(fc.constant(vs), fc.shuffledSubarray(vs, { minLength: vs.length }))), ([inOrder, shuffled]) => {
      const one = newRegistry().registry;
      const two = newRegistry().registry;
      // Replicas apply peers' records as they are, so the final record must not depend on order.
      for (const v of inOrder) one.applyRecord({ ...registration(v), overriddenStatus: undefined, lastUpdatedTimestamp: 0 });
      for (const v of shuffled) two.applyRecord({ ...registration(v), overriddenStatus: undefined, lastUpdatedTimestamp: 0 });
      const a = one.get('billing', 'i-1').record;
      const b = two.get('billing', 'i-1').record;
      assert.deepEqual({ ...a, lastUpdatedTimestamp: 0 }, { ...b, lastUpdatedTimestamp: 0 });
      const max = Math.max(...inOrder.map((v) => v.lastDirtyTimestamp));
      assert.equal(a.lastDirtyTimestamp, max);
    }),
    { numRuns: 300 },
  );
});
