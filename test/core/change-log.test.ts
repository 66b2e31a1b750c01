import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ChangeLog } from '../../src/core/change-log.js';
import type { Change } from '../../src/core/types.js';

/** Only the revision matters to the log. */
const change = (revision: number): Change => ({ revision, type: 'ADDED', instance: undefined as unknown as Change['instance'] });

test('property: the change log answers like the last `capacity` changes, while it grows and once it wraps', () => {
  fc.assert(
    fc.property(
      // Capacities around the ring's starting slots (1,024), so growth, a partial last doubling and wrapping are all met.
      fc.integer({ min: 1, max: 3000 }),
      fc.integer({ min: 0, max: 7000 }),
      fc.array(fc.tuple(fc.integer({ min: -1, max: 7001 }), fc.integer({ min: 1, max: 5000 })), { minLength: 1, maxLength: 10 }),
      (capacity, appended, queries) => {
        const log = new ChangeLog(capacity);
        for (let revision = 1; revision <= appended; revision++) log.append(change(revision));
        const kept = Math.min(capacity, appended);
        const oldest = appended - kept;
        assert.equal(log.oldestReplayable(appended), oldest);
        for (const [since, max] of queries) {
          const got = log.after(since, max, appended);
          if (since < oldest) {
            assert.equal(got, undefined, `since ${since} is older than the log`);
            continue;
          }
          const from = Math.max(since, oldest) + 1;
          const expected = Array.from({ length: Math.max(0, Math.min(max, appended - from + 1)) }, (_, i) => from + i);
          assert.deepEqual(
            got?.map((c) => c.revision),
            expected,
          );
        }
      },
    ),
    { numRuns: 200 },
  );
});
