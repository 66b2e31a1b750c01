import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ListApplicationsResponse } from '../../src/gen/roster/v1/registry_service.js';
import { instanceToProto } from '../../src/grpc/convert.js';
import { encodeListChunk } from '../../src/grpc/wire.js';
import { decodeListChunk } from '../../src/client/wire.js';

import { recordFields } from '../../src/core/entry.js';
import { storedView, text, timestamp, view } from './arbitraries.js';

test('property: hand-encoded ListApplications chunks decode to exactly what the generated encoder would send', () => {
  fc.assert(
    fc.property(fc.array(view, { maxLength: 20 }), fc.record({ revision: timestamp, reconcileHash: text, totalInstances: fc.nat(), nodeId: text }), (views, header) => {
      const decoded = ListApplicationsResponse.decode(encodeListChunk(header, views).bytes);
      assert.deepEqual(decoded, { ...header, instances: views.map(instanceToProto) });
    }),
    { numRuns: 500 },
  );
});

test('property: a stored entry encodes to the bytes of its fields written out (address and URLs from their compact forms)', () => {
  const header = { revision: 1, reconcileHash: '', totalInstances: 1, nodeId: 'n' };
  fc.assert(
    fc.property(fc.array(storedView, { minLength: 1, maxLength: 5 }), (views) => {
      const plain = views.map(({ record, lease }) => ({
        record: recordFields(record),
        lease: {
          registrationTimestamp: lease.registrationTimestamp,
          lastRenewalTimestamp: lease.lastRenewalTimestamp,
          evictionTimestamp: lease.evictionTimestamp,
          serviceUpTimestamp: lease.serviceUpTimestamp,
        },
      }));
      assert.deepEqual(encodeListChunk(header, views).bytes, encodeListChunk(header, plain).bytes);
    }),
    { numRuns: 1_000 },
  );
});

test('property: the client decoder reads chunks exactly as the generated decoder does', () => {
  fc.assert(
    fc.property(fc.array(view, { maxLength: 20 }), fc.record({ revision: timestamp, reconcileHash: text, totalInstances: fc.nat(), nodeId: text }), fc.boolean(), (views, header, generated) => {
      const message = { ...header, instances: views.map(instanceToProto) };
      // Both encoders: the server's hand-written one and the generated one (other field order, defaults).
      const bytes = generated ? ListApplicationsResponse.encode(message).finish() : encodeListChunk(header, views).bytes;
      assert.deepEqual(decodeListChunk(bytes), ListApplicationsResponse.decode(bytes));
    }),
    { numRuns: 500 },
  );
});

test('the client decoder refuses truncated input instead of inventing fields', () => {
  const { bytes } = encodeListChunk({ revision: 7, reconcileHash: 'UP_1_', totalInstances: 1, nodeId: 'n' }, []);
  assert.throws(() => decodeListChunk(bytes.subarray(0, bytes.length - 1)), RangeError);
});

test('chunks stop at the count or just past the byte budget, and resume where they stopped', () => {
  const views = fc.sample(view, { numRuns: 50, seed: 7 });
  const header = { revision: 1, reconcileHash: '', totalInstances: views.length, nodeId: 'n' };
  const seen: string[] = [];
  for (let start = 0; start < views.length; ) {
    const { bytes, next } = encodeListChunk(header, views, start, 7, 2_000);
    assert.ok(next > start && next - start <= 7);
    const decoded = ListApplicationsResponse.decode(bytes).instances;
    assert.equal(decoded.length, next - start);
    const withoutLast = encodeListChunk(header, views, start, next - start - 1).bytes;
    assert.ok(next - start === 1 || withoutLast.length < 2_000, 'no instance is added once the budget is passed');
    seen.push(...decoded.map((i) => i.instanceId));
    start = next;
  }
  assert.deepEqual(
    seen,
    views.map((v) => v.record.instanceId),
  );
});
