import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import { TokenBucket } from '../../src/grpc/rate-limit.js';

const takeAll = (bucket: TokenBucket, max = 1000): number => {
  let taken = 0;
  while (taken < max && bucket.tryTake()) taken++;
  return taken;
};

describe('TokenBucket', () => {
  test('starts full: the burst goes through, then nothing', () => {
    const bucket = new TokenBucket({ ratePerSecond: 10, burst: 5, clock: new FakeClock() });
    assert.equal(takeAll(bucket), 5);
    assert.equal(bucket.tryTake(), false);
  });

  test('refills at the rate, never above the burst', () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket({ ratePerSecond: 10, burst: 5, clock });
    takeAll(bucket);
    clock.advance(99);
    assert.equal(bucket.tryTake(), false, 'less than one token after 99 ms at 10/s');
    clock.advance(1);
    assert.equal(takeAll(bucket), 1);
    clock.advance(250);
    assert.equal(takeAll(bucket), 2, 'fractions carry over: 2.5 tokens');
    clock.advance(60_000);
    assert.equal(takeAll(bucket), 5, 'capped at the burst');
  });

  test('refuses nonsense settings', () => {
    assert.throws(() => new TokenBucket({ ratePerSecond: 0, burst: 5, clock: new FakeClock() }), RangeError);
    assert.throws(() => new TokenBucket({ ratePerSecond: 5, burst: 0, clock: new FakeClock() }), RangeError);
  });
});
