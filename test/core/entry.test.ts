import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Entry, recordFields } from '../../src/core/entry.js';
import { StringPool } from '../../src/core/intern.js';
import type { InstanceRecord } from '../../src/core/types.js';
import { registration } from './fixtures.js';

const octet = fc.integer({ min: 0, max: 255 });
const host = fc.oneof(fc.constant(''), fc.constantFrom('billing-1.example.internal', 'h', '10.0.0.1'), fc.string({ maxLength: 12 }));
const address = fc.oneof(
  fc.tuple(octet, octet, octet, octet).map((o) => o.join('.')),
  fc.constantFrom('', '010.0.0.1', '1.2.3', '1.2.3.4.5', '256.1.1.1', '::1', 'fe80::1', '1..2.3'),
  fc.string({ maxLength: 16 }),
);
const time = fc.oneof(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.constantFrom(0, 1_000, Date.UTC(2026, 0, 1), 2 ** 26, 2 ** 26 - 1));

test('property: a stored record gives back every field it was built from (host name, address, URLs and timestamps packed or not)', () => {
  const pool = new StringPool(50);
  fc.assert(
    fc.property(
      fc.record({ hostName: host, ipAddr: address, idTail: fc.constantFrom('', ':8080', ':billing:8080'), path: fc.string({ maxLength: 8 }), dirty: time, updated: time }),
      ({ hostName, ipAddr, idTail, path, dirty, updated }) => {
        const input = registration({
          instanceId: `${hostName}${idTail}` || 'i-1',
          hostName,
          ipAddr,
          homePageUrl: `http://${hostName}:8080/${path}`,
          statusPageUrl: `http://${ipAddr}:8080/status`,
          healthCheckUrl: path,
        });
        const entry = new Entry(input, { status: 'UP', overriddenStatus: undefined, lastDirtyTimestamp: dirty, lastUpdatedTimestamp: updated }, pool);
        const expected: InstanceRecord = { ...input, status: 'UP', overriddenStatus: undefined, lastDirtyTimestamp: dirty, lastUpdatedTimestamp: updated };
        assert.deepEqual(recordFields(entry), expected);
      },
    ),
    { numRuns: 500 },
  );
});

test('metadata keeps every key as its own property, `__proto__` included, shared or not', () => {
  const metadata = JSON.parse('{"__proto__": "x", "zone": "a"}') as Record<string, string>;
  for (const pool of [new StringPool(), new StringPool(0)]) {
    const entry = new Entry(registration({ metadata }), { status: 'UP', overriddenStatus: undefined, lastDirtyTimestamp: 1, lastUpdatedTimestamp: 1 }, pool);
    assert.deepEqual(Object.entries(entry.metadata), [['__proto__', 'x'], ['zone', 'a']]);
    assert.equal(Object.getPrototypeOf(entry.metadata), Object.prototype);
  }
});
