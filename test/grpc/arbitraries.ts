/**
 * fast-check arbitraries for registry records and views, at the edges the hand-written
 * protobuf codecs must get right (binary strings, 2^53 - 1, empty values, big metadata),
 * shared by the property tests that compare those codecs with the generated ones.
 */
import fc from 'fast-check';
import { STATUSES, type InstanceRecord, type InstanceView } from '../../src/core/types.js';

export const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), fc.constant(''), fc.constant('billing'));
export const timestamp = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 ** 31 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
const port = fc.record({ number: fc.integer({ min: 0, max: 65535 }), enabled: fc.boolean() });
const status = fc.constantFrom(...STATUSES);

export const record: fc.Arbitrary<InstanceRecord> = fc.record({
  app: text,
  instanceId: text,
  hostName: text,
  ipAddr: text,
  port,
  securePort: port,
  status,
  overriddenStatus: fc.option(status, { nil: undefined }),
  vipAddress: text,
  secureVipAddress: text,
  zone: text,
  region: text,
  // "__proto__" is left out: the generated decoder cannot represent that key either.
  metadata: fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }).filter((k) => k !== '__proto__'), fc.string({ maxLength: 300 }), {
    maxKeys: 8,
    noNullPrototype: true,
  }),
  homePageUrl: text,
  statusPageUrl: text,
  healthCheckUrl: fc.string({ maxLength: 3000 }),
  renewalIntervalSecs: fc.integer({ min: 0, max: 300 }),
  durationSecs: fc.integer({ min: 0, max: 3600 }),
  lastDirtyTimestamp: timestamp,
  lastUpdatedTimestamp: timestamp,
});

export const view: fc.Arbitrary<InstanceView> = fc.record({
  record,
  lease: fc.record({ registrationTimestamp: timestamp, lastRenewalTimestamp: timestamp, evictionTimestamp: timestamp, serviceUpTimestamp: timestamp }),
});
