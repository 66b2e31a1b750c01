import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import { DeltaWindow } from '../../src/eureka/delta-window.js';

test('the delta window covers every change younger than the window, and at most a second more', () => {
  const clock = new FakeClock();
  const window = new DeltaWindow(clock, 10_000);
  assert.equal(window.since(0), 0, 'no change yet: nothing to replay');
  window.note(1);
  clock.advance(400);
  window.note(2); // same second as revision 1
  clock.advance(5_000);
  window.note(3);
  assert.equal(window.since(3), 0, 'all three are inside');
  clock.advance(5_000); // revision 1 is 10.4 s old, revision 2 exactly 10 s: its bucket stays
  assert.equal(window.since(3), 0);
  clock.advance(600); // the whole first bucket is now older than the window
  assert.equal(window.since(3), 2, 'only revision 3 is left');
  clock.advance(5_000); // revision 3 is 10.6 s old: within the second of slack
  assert.equal(window.since(3), 2);
  clock.advance(1_000);
  assert.equal(window.since(3), 3, 'nothing left: the delta is empty');
});

test('memory is one mark per second of the window, however many changes', () => {
  const clock = new FakeClock();
  const window = new DeltaWindow(clock, 3_000);
  let revision = 0;
  for (let ms = 0; ms < 60_000; ms += 10) {
    for (let i = 0; i < 10; i++) window.note(++revision);
    clock.advance(10);
  }
  // 60k changes over 60 s: the window reaches back about 3-4 s, i.e. a few thousand revisions.
  const since = window.since(revision);
  assert.ok(revision - since >= 3_000 && revision - since <= 4_000 + 100, `window holds ${revision - since} changes`);
});
