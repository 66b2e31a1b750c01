import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { StreamTable } from '../../src/grpc/http2/stream-table.js';

// Odd ids as a client opens them, and some others; a small table so that runs wrap and it grows.
const id = fc.oneof(
  fc.integer({ min: 0, max: 40 }).map((n) => 2 * n + 1),
  fc.integer({ min: 1, max: 0x7fffffff }),
);
const op = fc.oneof(fc.record({ kind: fc.constant('set' as const), id, value: fc.integer() }), fc.record({ kind: fc.constant('delete' as const), id }));

test('property: StreamTable answers get, delete, size and values as a Map does, through growth and wrapped runs', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), fc.constantFrom(2, 4, 16), (ops, capacity) => {
      const table = new StreamTable<number>(capacity);
      const model = new Map<number, number>();
      for (const o of ops) {
        if (o.kind === 'set') {
          table.set(o.id, o.value);
          model.set(o.id, o.value);
        } else {
          assert.equal(table.delete(o.id), model.delete(o.id));
        }
        assert.equal(table.size, model.size);
      }
      for (const o of ops) assert.equal(table.get(o.id), model.get(o.id));
      assert.deepEqual([...table.values()].sort(), [...model.values()].sort());
    }),
    { numRuns: 1_000 },
  );
});

test('StreamTable refuses an id that is no stream id', () => {
  const table = new StreamTable<string>();
  for (const bad of [0, -1, 1.5, 2 ** 31, Number.NaN]) assert.throws(() => table.set(bad, 'x'), RangeError);
  table.set(1, 'one');
  // 0 marks an empty slot inside: no id 0 is found or removed.
  for (const bad of [0, -1, Number.NaN]) {
    assert.equal(table.get(bad), undefined);
    assert.equal(table.delete(bad), false);
  }
  assert.equal(table.size, 1);
  assert.equal(table.get(1), 'one');
});
