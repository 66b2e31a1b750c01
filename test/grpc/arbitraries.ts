/**
 * fast-check arbitraries for registry records and views, at the edges the hand-written
 * protobuf codecs must get right (binary strings, 2^53 - 1, empty values, big metadata),
 * shared by the property tests that compare those codecs with the generated ones.
 */
import fc from 'fast-check';
import { Entry } from '../../src/core/entry.js';
import { StringPool } from '../../src/core/intern.js';
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
  metadata: fc.dictionary(
    fc.string({ minLength: 1, maxLength: 20 }).filter((k) => k !== '__proto__'),
    fc.string({ maxLength: 300 }),
    {
      maxKeys: 8,
      noNullPrototype: true,
    },
  ),
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

const octet = fc.integer({ min: 0, max: 255 });
/** Text around a host name or address in a URL: short or not, ASCII or not. */
const urlPart = fc.oneof(fc.constantFrom('', 'http://', ':8080/status', 'é/'), text, fc.string({ minLength: 100, maxLength: 140 }));

/**
 * Stored entries (core/entry.ts), whose host names, addresses and URLs are kept in compact
 * forms that the encoders write from: dotted IPv4 addresses or not, URLs around the host name
 * or the address or neither, in a pool that is sometimes full.
 */
export const storedView: fc.Arbitrary<InstanceView> = fc
  .record({
    base: record,
    hostName: fc.oneof(text, fc.constantFrom('billing-1.example.internal', 'h')),
    ipAddr: fc.oneof(
      fc.tuple(octet, octet, octet, octet).map((o) => o.join('.')),
      text,
    ),
    urls: fc.array(fc.tuple(urlPart, fc.constantFrom('host', 'ip', 'none'), urlPart), { minLength: 3, maxLength: 3 }),
    idTail: fc.constantFrom('', ':8080'),
    pool: fc.constantFrom(0, 1, 1_000),
  })
  .map(({ base, hostName, ipAddr, urls, idTail, pool }) => {
    const [home, status, health] = urls.map(([head, cut, tail]) => `${head}${cut === 'host' ? hostName : cut === 'ip' ? ipAddr : ''}${tail}`);
    const input = { ...base, instanceId: `${hostName}${idTail}`, hostName, ipAddr, homePageUrl: home!, statusPageUrl: status!, healthCheckUrl: health! };
    const entry = new Entry(input, base, new StringPool(pool));
    return { record: entry, lease: entry };
  });
