import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import { backoffDelay, sleep } from '../../src/client/backoff.js';

test('backoff doubles from the initial delay, caps at the maximum, and jitters within [half, full]', () => {
  const opts = { initialMs: 100, maxMs: 1000 };
  assert.equal(
    backoffDelay(0, opts, () => 0),
    50,
  );
  assert.equal(
    backoffDelay(0, opts, () => 1),
    100,
  );
  assert.equal(
    backoffDelay(3, opts, () => 1),
    800,
  );
  assert.equal(
    backoffDelay(4, opts, () => 1),
    1000,
  );
  assert.equal(
    backoffDelay(1000, opts, () => 0.5),
    750,
  );
  for (let attempt = 0; attempt < 40; attempt++) {
    const d = backoffDelay(attempt);
    const nominal = Math.min(30_000, 100 * 2 ** attempt);
    assert.ok(d >= nominal / 2 && d <= nominal, `attempt ${attempt}: ${d}`);
  }
});

test('sleep resolves true when the clock passes and false on abort, leaving no timer behind', async () => {
  const clock = new FakeClock();
  const done = sleep(clock, 1000);
  clock.advance(999);
  assert.equal(clock.pendingTimers, 1);
  clock.advance(1);
  assert.equal(await done, true);

  const abort = new AbortController();
  const aborted = sleep(clock, 1000, abort.signal);
  abort.abort();
  assert.equal(await aborted, false);
  assert.equal(clock.pendingTimers, 0);
  assert.equal(await sleep(clock, 5, abort.signal), false);
});
