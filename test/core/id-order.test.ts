import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { IdOrder } from '../../src/core/id-order.js';

/** A version of an instance: ids repeat across versions, objects do not. */
interface Item {
  readonly id: string;
  readonly version: number;
}

type Op =
  | { kind: 'add'; app: number; id: number }
  | { kind: 'replace'; app: number; pick: number }
  | { kind: 'remove'; app: number; pick: number }
  | { kind: 'read'; app: number }
  | { kind: 'lend'; app: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('add' as const), app: fc.nat(2), id: fc.nat(60) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('replace' as const), app: fc.nat(2), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('remove' as const), app: fc.nat(2), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('read' as const), app: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('lend' as const), app: fc.nat(2) }) },
);

test('an app read in id order after any interleaving of arrivals, new versions, removals and reads; lent lists never change', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      // The model: each app's live items by id, as the registry's maps hold them.
      const apps = new Map<string, Map<string, Item>>();
      const order = new IdOrder<Item>(
        (item) => item.id,
        (app) => apps.get(app)!.values(),
      );
      const lent: { list: readonly Item[]; copy: Item[] }[] = [];
      let version = 0;
      const expected = (app: string): Item[] => [...apps.get(app)!.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      for (const o of ops) {
        const app = `app-${o.app}`;
        const items = apps.get(app);
        switch (o.kind) {
          case 'add': {
            // Ids as strings that do not sort as numbers do.
            const id = `i-${o.id}`;
            if (items?.has(id)) break;
            const item = { id, version: version++ };
            if (items === undefined) {
              apps.set(app, new Map([[id, item]]));
              order.start(app);
            } else items.set(id, item);
            order.added(app, item);
            break;
          }
          case 'replace':
          case 'remove': {
            if (items === undefined) break;
            const previous = [...items.values()][o.pick % items.size]!;
            if (o.kind === 'replace') {
              const next = { id: previous.id, version: version++ };
              items.set(previous.id, next);
              order.replaced(app, previous, next);
            } else {
              items.delete(previous.id);
              order.removed(app, previous);
              if (items.size === 0) {
                apps.delete(app);
                order.forget(app);
              }
            }
            break;
          }
          case 'read':
            if (items !== undefined) assert.deepEqual(order.sorted(app), expected(app));
            break;
          case 'lend':
            if (items !== undefined) {
              const list = order.lend(app);
              lent.push({ list, copy: [...list] });
            }
            break;
        }
      }
      for (const app of apps.keys()) assert.deepEqual(order.sorted(app), expected(app));
      for (const { list, copy } of lent) assert.deepEqual(list, copy);
    }),
    { numRuns: 300 },
  );
});

test('an app that outgrows the kept size is sorted whole on its next read', () => {
  const items = new Map<string, Item>();
  const order = new IdOrder<Item>(
    (item) => item.id,
    () => items.values(),
  );
  order.start('big');
  // Descending ids, so that arrival order is never id order.
  for (let i = 5_000; i > 0; i--) {
    const item = { id: `i-${String(i).padStart(5, '0')}`, version: i };
    items.set(item.id, item);
    order.added('big', item);
  }
  const sorted = order.sorted('big');
  assert.equal(sorted.length, 5_000);
  assert.equal(sorted[0]!.id, 'i-00001');
  assert.equal(sorted.at(-1)!.id, 'i-05000');
});
