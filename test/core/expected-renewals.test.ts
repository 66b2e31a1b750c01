import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ExpectedRenewals } from '../../src/core/expected-renewals.js';

const WINDOW = 60_000;

test('property: the O(1) expected renewals equal the sum over instances of min(window, age) × rate', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('add' as const), interval: fc.integer({ min: 1, max: 300 }) }),
    fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
    fc.record({ kind: fc.constant('rate' as const), pick: fc.nat(), interval: fc.integer({ min: 1, max: 300 }) }),
    fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 90_000 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const expected = new ExpectedRenewals(WINDOW);
      // Slots as the registry hands them out: a removed one is reused first (often at the same time).
      const live: { slot: number; registeredAt: number; rate: number }[] = [];
      const free: number[] = [];
      let nextSlot = 0;
      let now = 1_000_000;
      for (const o of ops) {
        if (o.kind === 'add') {
          const e = { slot: free.pop() ?? nextSlot++, registeredAt: now, rate: 1 / (o.interval * 1000) };
          expected.add(e.slot, e.registeredAt, e.rate);
          live.push(e);
        } else if (o.kind === 'remove' && live.length > 0) {
          const [e] = live.splice(o.pick % live.length, 1);
          expected.remove(e!.slot);
          free.push(e!.slot);
        } else if (o.kind === 'rate' && live.length > 0) {
          const e = live[o.pick % live.length]!;
          e.rate = 1 / (o.interval * 1000);
          expected.setRate(e.slot, e.rate);
        } else if (o.kind === 'advance') {
          now += o.ms;
        }
        const brute = live.reduce((sum, e) => sum + Math.min(WINDOW, now - e.registeredAt) * e.rate, 0);
        assert.ok(Math.abs(expected.at(now) - brute) < 1e-6 * Math.max(1, brute), `${expected.at(now)} vs ${brute}`);
      }
    }),
    { numRuns: 300 },
  );
});

test('many instances: pages and queue chunks (4,096 entries) are crossed, drained and refilled', () => {
  const expected = new ExpectedRenewals(WINDOW);
  const live = new Map<number, { registeredAt: number; rate: number }>();
  const check = (now: number): void => {
    let brute = 0;
    for (const e of live.values()) brute += Math.min(WINDOW, now - e.registeredAt) * e.rate;
    assert.ok(Math.abs(expected.at(now) - brute) < 1e-6 * Math.max(1, brute), `at ${now}: ${expected.at(now)} vs ${brute}`);
  };
  let now = 0;
  let slot = 0;
  // Three waves of 10,000, each over 20 s; between waves everything matures and the queue drains.
  for (let wave = 0; wave < 3; wave++) {
    for (let i = 0; i < 10_000; i++, slot++) {
      now += 2;
      const rate = 1 / ((1 + (i % 90)) * 1000);
      expected.add(slot, now, rate);
      live.set(slot, { registeredAt: now, rate });
      if (i % 7 === 3) {
        expected.remove(slot - 3);
        live.delete(slot - 3);
      }
      if (i % 2_500 === 0) check(now);
    }
    check(now);
    now += WINDOW + 1;
    check(now);
  }
});
