import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LeaseTable } from '../../src/core/lease-table.js';

test('lease table past its pages and doublings: columns read back, the heap finds exactly the due slots', () => {
  const table = new LeaseTable<string>();
  // A deterministic pseudo-random sequence (a linear congruential generator).
  let seed = 42;
  const random = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const live = new Map<number, number>();
  for (let i = 0; i < 20_000; i++) {
    const slot = table.allocate();
    table.setOwner(slot, `owner-${slot}`);
    table.setRegistrationTimestamp(slot, 1_000 + slot);
    table.setHash(slot, slot * 3);
    const deadline = Math.floor(random() * 100_000);
    table.setDeadline(slot, deadline);
    live.set(slot, deadline);
    if (random() < 0.3) {
      const victim = [...live.keys()][Math.floor(random() * live.size)]!;
      table.free(victim);
      live.delete(victim);
    }
  }
  // Renewals move some deadlines later, some earlier.
  for (const slot of [...live.keys()].filter((_, i) => i % 5 === 0)) {
    const deadline = Math.floor(random() * 100_000);
    table.setDeadline(slot, deadline);
    live.set(slot, deadline);
  }
  assert.equal(table.size, live.size);
  for (const [slot, deadline] of live) {
    assert.equal(table.owner(slot), `owner-${slot}`);
    assert.equal(table.deadline(slot), deadline);
    assert.equal(table.hash(slot), slot * 3);
    assert.ok(table.scheduled(slot));
  }
  assert.equal(table.earliest(), Math.min(...live.values()));
  for (const now of [0, 5_000, 50_000, 100_000]) {
    const due = table.collectDue(now).sort((a, b) => a - b);
    const brute = [...live]
      .filter(([, d]) => d <= now)
      .map(([s]) => s)
      .sort((a, b) => a - b);
    assert.deepEqual(due, brute, `due at ${now}`);
  }
});
