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
    assert.deepEqual(Object.entries(entry.metadata), [
      ['__proto__', 'x'],
      ['zone', 'a'],
    ]);
    assert.equal(Object.getPrototypeOf(entry.metadata), Object.prototype);
  }
});

test('property: instances of an app share a profile while they agree, and each reads back its own fields whatever came between', () => {
  const shape = fc.record({
    port: fc.constantFrom(8080, 9090),
    region: fc.constantFrom('eu-1', 'us-1'),
    renewalIntervalSecs: fc.constantFrom(30, 10),
    path: fc.constantFrom('/status', '/actuator/info'),
  });
  fc.assert(
    fc.property(fc.array(shape, { minLength: 2, maxLength: 12 }), (shapes) => {
      const pool = new StringPool();
      const version = { status: 'UP', overriddenStatus: undefined, lastDirtyTimestamp: 5, lastUpdatedTimestamp: 6 } as const;
      const inputs = shapes.map((s, i) =>
        registration({
          app: 'billing',
          instanceId: `h${i}:billing:${s.port}`,
          hostName: `h${i}`,
          port: { number: s.port, enabled: true },
          region: s.region,
          renewalIntervalSecs: s.renewalIntervalSecs,
          statusPageUrl: `http://h${i}:${s.port}${s.path}`,
        }),
      );
      const entries = inputs.map((input) => new Entry(input, version, pool));
      for (const [i, entry] of entries.entries()) assert.deepEqual(recordFields(entry), { ...inputs[i], ...version });
      for (let i = 1; i < shapes.length; i++) {
        // The URL form (`http://{host}:<port><path>`) is pooled whichever profile holds it.
        const sameForm = shapes[i]!.port === shapes[i - 1]!.port && shapes[i]!.path === shapes[i - 1]!.path;
        assert.equal(entries[i]!.storedUrl('statusPageUrl') === entries[i - 1]!.storedUrl('statusPageUrl'), sameForm);
        // The same registration again, after whatever shape came last, has the same content.
        assert.ok(new Entry(inputs[i - 1]!, version, pool).sameContentAs(entries[i - 1]!));
        assert.equal(entries[i]!.sameContentAs(new Entry({ ...inputs[i]!, region: 'elsewhere' }, version, pool)), false);
      }
    }),
    { numRuns: 300 },
  );
});
