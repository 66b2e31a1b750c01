import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { recordFields } from '../../src/core/entry.js';
import { LeaseTable } from '../../src/core/lease-table.js';
import { newRegistry, registration } from './fixtures.js';

test('property: the lease table finds exactly the due slots and agrees with a model', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('add' as const), deadline: fc.integer({ min: 0, max: 1000 }) }),
    fc.record({ kind: fc.constant('set' as const), pick: fc.nat(), deadline: fc.integer({ min: 0, max: 1000 }) }),
    fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }),
    fc.record({ kind: fc.constant('evict' as const), now: fc.integer({ min: 0, max: 1000 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const table = new LeaseTable<string>();
      // slot -> [owner, deadline]; freed slots are reused by the table.
      const model = new Map<number, [string, number]>();
      let names = 0;
      for (const o of ops) {
        const slots = [...model.keys()];
        if (o.kind === 'add') {
          const slot = table.allocate();
          assert.equal(model.has(slot), false, 'a live slot is never handed out again');
          const name = `k${names++}`;
          table.setOwner(slot, name);
          table.setDeadline(slot, o.deadline);
          model.set(slot, [name, o.deadline]);
        } else if (o.kind === 'set' && slots.length > 0) {
          const slot = slots[o.pick % slots.length]!;
          table.setDeadline(slot, o.deadline);
          model.get(slot)![1] = o.deadline;
        } else if (o.kind === 'free' && slots.length > 0) {
          const slot = slots[o.pick % slots.length]!;
          table.free(slot);
          model.delete(slot);
        } else if (o.kind === 'evict') {
          // What an eviction pass does: find the due slots, then free them one by one.
          const due = table.collectDue(o.now);
          const expected = [...model]
            .filter(([, [, d]]) => d <= o.now)
            .map(([, [name]]) => name)
            .sort();
          assert.deepEqual(due.map((slot) => table.owner(slot)).sort(), expected);
          for (const slot of due) {
            table.free(slot);
            model.delete(slot);
          }
        }
        assert.equal(table.size, model.size);
        for (const [slot, [name, deadline]] of model) {
          assert.equal(table.owner(slot), name);
          assert.equal(table.deadline(slot), deadline);
          assert.equal(table.scheduled(slot), true);
        }
        const min = Math.min(...[...model.values()].map(([, d]) => d));
        assert.equal(table.earliest(), model.size === 0 ? undefined : min);
      }
    }),
    { numRuns: 300 },
  );
});

test('property: an expired or evicted lease cannot be renewed', () => {
  const step = fc.oneof(fc.record({ kind: fc.constant('advance' as const), seconds: fc.integer({ min: 1, max: 60 }) }), fc.record({ kind: fc.constant('beat' as const) }));
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
    fc.property(
      fc.array(version, { minLength: 1, maxLength: 8 }).chain((vs) => fc.tuple(fc.constant(vs), fc.shuffledSubarray(vs, { minLength: vs.length }))),
      ([inOrder, shuffled]) => {
        const one = newRegistry().registry;
        const two = newRegistry().registry;
        // Replicas apply peers' records as they are, so the final record must not depend on order.
        for (const v of inOrder) one.applyRecord({ ...registration(v), overriddenStatus: undefined, lastUpdatedTimestamp: 0 });
        for (const v of shuffled) two.applyRecord({ ...registration(v), overriddenStatus: undefined, lastUpdatedTimestamp: 0 });
        const a = one.get('billing', 'i-1').record;
        const b = two.get('billing', 'i-1').record;
        assert.deepEqual({ ...recordFields(a), lastUpdatedTimestamp: 0 }, { ...recordFields(b), lastUpdatedTimestamp: 0 });
        const max = Math.max(...inOrder.map((v) => v.lastDirtyTimestamp));
        assert.equal(a.lastDirtyTimestamp, max);
      },
    ),
    { numRuns: 300 },
  );
});

test('snapshots and application reads list the current entries in (app, instance id) order, whatever writes came between them, and an earlier snapshot stays as it was', () => {
  const id = fc.integer({ min: 0, max: 11 });
  const op = fc.oneof(
    fc.record({ kind: fc.constant('register' as const), id, zone: fc.constantFrom('a', 'b') }),
    fc.record({ kind: fc.constant('cancel' as const), id }),
    fc.record({ kind: fc.constant('metadata' as const), id, value: fc.string({ maxLength: 3 }) }),
    fc.record({ kind: fc.constant('heartbeat' as const), id }),
    fc.record({ kind: fc.constant('read' as const) }),
  );
  // Ids spread over three apps; instance ids in an order unlike insertion order.
  const where = (i: number): { app: string; instanceId: string } => ({ app: `app-${i % 3}`, instanceId: `i-${(i * 7) % 12}` });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const { registry } = newRegistry();
      for (const o of ops) {
        // A snapshot taken before a write keeps showing what it showed (the write copies the app's list).
        const earlier = registry.snapshot();
        const shown = earlier.apps.flat();
        try {
          if (o.kind === 'register') registry.register(registration({ ...where(o.id), zone: o.zone }));
          else if (o.kind === 'cancel') registry.cancel(where(o.id).app, where(o.id).instanceId);
          else if (o.kind === 'metadata') registry.updateMetadata(where(o.id).app, where(o.id).instanceId, { k: o.value }, []);
          else if (o.kind === 'heartbeat') registry.heartbeat(where(o.id).app, where(o.id).instanceId);
        } catch {
          // Unknown instances are refused; the reads below must still be right.
        }
        assert.deepEqual(earlier.apps.flat(), shown, 'an earlier snapshot is left as it was');
        assert.deepEqual(earlier.instances, shown);
        const listed = registry.snapshot().instances.map((v) => `${v.record.app}/${v.record.instanceId}`);
        const expected = [...listed].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        assert.deepEqual(listed, expected, 'snapshot order');
        for (const view of registry.snapshot().instances) {
          assert.equal(view.record, registry.record(view.record.app, view.record.instanceId), 'a snapshot lists the stored record, not an older one');
        }
        for (const app of ['app-0', 'app-1', 'app-2']) {
          const read = registry.getApplication(app).instances.map((v) => v.record.instanceId);
          assert.deepEqual(
            read,
            listed.filter((k) => k.startsWith(`${app}/`)).map((k) => k.slice(app.length + 1)),
            `getApplication(${app})`,
          );
        }
      }
    }),
    { numRuns: 200 },
  );
});

test('property: a standalone node that hashes versions only when it must ends in the digest and records of one that hashes as it stores', () => {
  const version = fc.record({
    instanceId: fc.constantFrom('i-1', 'i-2', 'i-3'),
    // Few timestamps, so versions tie and the hashes order them.
    lastDirtyTimestamp: fc.integer({ min: 1, max: 4 }),
    // Host names the URLs contain (kept as URL forms) or not, dotted IPv4 (packed) or not.
    hostName: fc.constantFrom('billing-1', 'billing-2', 'elsewhere'),
    ipAddr: fc.constantFrom('10.0.0.1', 'fe80::1'),
    status: fc.constantFrom('UP' as const, 'DOWN' as const),
    metadata: fc.dictionary(fc.constantFrom('x', 'y', 'z'), fc.constantFrom('1', '2')),
  });
  const op = fc.oneof(
    fc.record({ kind: fc.constant('register' as const), v: version }),
    fc.record({ kind: fc.constant('apply' as const), v: version }),
    fc.record({ kind: fc.constant('override' as const), instanceId: fc.constantFrom('i-1', 'i-2', 'i-3') }),
    fc.record({ kind: fc.constant('metadata' as const), instanceId: fc.constantFrom('i-1', 'i-2', 'i-3'), value: fc.constantFrom('a', 'b') }),
    fc.record({ kind: fc.constant('cancel' as const), instanceId: fc.constantFrom('i-1', 'i-2', 'i-3') }),
    // A peer asks the standalone node for a digest: from then on it hashes as it stores.
    fc.record({ kind: fc.constant('digest' as const) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
      const hashing = newRegistry({ digests: true }).registry;
      const standalone = newRegistry().registry;
      for (const o of ops) {
        const outcomes = [hashing, standalone].map((registry) => {
          try {
            if (o.kind === 'register') return registry.register(registration(o.v)).kept;
            if (o.kind === 'apply') return registry.applyRecord({ ...registration(o.v), overriddenStatus: undefined, lastUpdatedTimestamp: 0 });
            if (o.kind === 'override') return registry.setStatusOverride('billing', o.instanceId, 'OUT_OF_SERVICE').record.lastDirtyTimestamp;
            if (o.kind === 'metadata') return registry.updateMetadata('billing', o.instanceId, { m: o.value }, []).record.lastDirtyTimestamp;
            if (o.kind === 'cancel') return registry.cancel('billing', o.instanceId);
            return registry === standalone ? registry.digest().size : 'skipped';
          } catch (err) {
            return (err as Error).message;
          }
        });
        if (o.kind !== 'digest') assert.deepEqual(outcomes[1], outcomes[0], `${o.kind}: the same outcome`);
      }
      const records = (registry: typeof hashing): unknown[] => registry.snapshot().instances.map((v) => ({ ...recordFields(v.record), lastUpdatedTimestamp: 0 }));
      assert.deepEqual(records(standalone), records(hashing));
      assert.deepEqual(standalone.digest(), hashing.digest());
    }),
    { numRuns: 300 },
  );
});
