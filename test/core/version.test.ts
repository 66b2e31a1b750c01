import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Entry } from '../../src/core/entry.js';
import { StringPool } from '../../src/core/intern.js';
import type { InstanceRecord, InstanceStatus } from '../../src/core/types.js';
import { canonicalContent, compareVersions, contentHash as hashOf } from '../../src/core/version.js';
import { registration } from './fixtures.js';

/** A record's hash: the record gives its version fields too. */
const contentHash = (r: InstanceRecord): number => hashOf(r, r);

const record = (overrides: Partial<InstanceRecord> = {}): InstanceRecord => ({
  ...registration(),
  overriddenStatus: undefined,
  lastUpdatedTimestamp: 0,
  ...overrides,
});

// Every code unit JSON.stringify treats specially: quotes, backslash, controls, lone and paired surrogates.
const tricky = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: fc.constantFrom('"', '\\', '\n', '\t', '\b', '\f', '\r', '\u0000', '\u001f', '\ud800', '\udc00', '\ud83d\ude00', 'é', 'a', ','), maxLength: 12 }),
  fc.string({ maxLength: 40 }),
);
const status = fc.constantFrom<InstanceStatus>('UP', 'DOWN', 'STARTING', 'OUT_OF_SERVICE', 'UNKNOWN');
// Integers: record numbers are validated integers (JSON has no NaN, Infinity or -0).
const number = fc.oneof(fc.nat({ max: 65_535 }), fc.maxSafeNat(), fc.integer());

/** Every field that is content, numbers and metadata drawn from the arbitraries given. */
function contentFields(num: fc.Arbitrary<number>, metadata: fc.Arbitrary<Record<string, string>>) {
  return fc.record({
    app: tricky,
    instanceId: tricky,
    hostName: tricky,
    ipAddr: tricky,
    port: fc.record({ number: num, enabled: fc.boolean() }),
    securePort: fc.record({ number: num, enabled: fc.boolean() }),
    status,
    overriddenStatus: fc.option(status, { nil: undefined }),
    vipAddress: tricky,
    secureVipAddress: tricky,
    zone: tricky,
    region: tricky,
    metadata,
    homePageUrl: tricky,
    statusPageUrl: tricky,
    healthCheckUrl: tricky,
    renewalIntervalSecs: num,
    durationSecs: num,
    lastDirtyTimestamp: num,
  });
}

test('property: the canonical content gives back every replicated field, whatever the strings (no two contents share a string)', () => {
  fc.assert(
    fc.property(contentFields(number, fc.dictionary(tricky, tricky, { maxKeys: 5 })), (fields) => {
      const r = record(fields);
      const metadata = Object.keys(r.metadata)
        .sort()
        .map((k) => [k, r.metadata[k]]);
      assert.deepEqual(JSON.parse(canonicalContent(r)), [
        r.app,
        r.instanceId,
        r.hostName,
        r.ipAddr,
        r.port.number,
        r.port.enabled,
        r.securePort.number,
        r.securePort.enabled,
        r.status,
        r.overriddenStatus ?? '',
        r.vipAddress,
        r.secureVipAddress,
        r.zone,
        r.region,
        metadata,
        r.homePageUrl,
        r.statusPageUrl,
        r.healthCheckUrl,
        r.renewalIntervalSecs,
        r.durationSecs,
        r.lastDirtyTimestamp,
      ]);
    }),
    { numRuns: 2_000 },
  );
});

/**
 * Every node must break a tie the same way, so the canonical content and its hash are part of
 * the wire contract between versions: these values are pinned (changing them is a breaking change).
 */
test('contentHash: known records hash to pinned values, and any field change moves it', () => {
  const pinned: [InstanceRecord, string, number][] = [
    [
      record(),
      '["billing","i-1","billing-1.example.internal","10.0.0.1",8080,true,8443,false,"UP","","billing,billing-v2","billing-secure","us-east-1a","us-east-1",[["version","1.2.3"]],"http://billing-1:8080/","http://billing-1:8080/status","http://billing-1:8080/health",30,90,1000]',
      6745725329360075,
    ],
    [
      record({ metadata: { 'q"\\\n': '\ud800 lone', emoji: '\ud83d\ude00', é: 'café' } }),
      '["billing","i-1","billing-1.example.internal","10.0.0.1",8080,true,8443,false,"UP","","billing,billing-v2","billing-secure","us-east-1a","us-east-1",[["emoji","\ud83d\ude00"],["q\\"\\\\\\n","\\ud800 lone"],["é","café"]],"http://billing-1:8080/","http://billing-1:8080/status","http://billing-1:8080/health",30,90,1000]',
      3964479249079904,
    ],
    [
      record({ hostName: '\u0000\u001f', overriddenStatus: 'OUT_OF_SERVICE', port: { number: 65535, enabled: false } }),
      '["billing","i-1","\\u0000\\u001f","10.0.0.1",65535,false,8443,false,"UP","OUT_OF_SERVICE","billing,billing-v2","billing-secure","us-east-1a","us-east-1",[["version","1.2.3"]],"http://billing-1:8080/","http://billing-1:8080/status","http://billing-1:8080/health",30,90,1000]',
      2136550274943648,
    ],
  ];
  for (const [r, canonical, hash] of pinned) {
    assert.equal(canonicalContent(r), canonical);
    assert.equal(contentHash(r), hash);
  }
  const base = record();
  for (const changed of [record({ zone: 'us-east-1b' }), record({ metadata: { version: '1.2.4' } }), record({ lastDirtyTimestamp: 1_001 }), record({ status: 'DOWN' })]) {
    assert.notEqual(contentHash(changed), contentHash(base));
  }
  // Node-local timestamps are not content.
  assert.equal(contentHash(record({ lastUpdatedTimestamp: 99 })), contentHash(base));
});

test('compareVersions: dirty timestamp first, then hash, then content; antisymmetric', () => {
  const older = record({ lastDirtyTimestamp: 1 });
  const newer = record({ lastDirtyTimestamp: 2 });
  assert.ok(compareVersions(newer, contentHash(newer), older, contentHash(older)) > 0);
  const a = record({ zone: 'a' });
  const b = record({ zone: 'b' });
  const ab = compareVersions(a, contentHash(a), b, contentHash(b));
  assert.notEqual(ab, 0);
  assert.equal(Math.sign(compareVersions(b, contentHash(b), a, contentHash(a))), -Math.sign(ab));
  assert.equal(compareVersions(a, contentHash(a), record({ zone: 'a' }), contentHash(a)), 0);
});

/** The definition the hash had before it was fed field by field: cyrb53 of the canonical string. */
function canonicalHash(r: InstanceRecord): number {
  const s = canonicalContent(r);
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

// Keys in any order, including ones objects list first (array indices) and inherited-looking names.
const metadataKey = fc.oneof(tricky, fc.constantFrom('0', '1', '9', '10', '01', '4294967295', 'toString', '__proto__x', 'version', 'zone'));
// Around 10^8, where a large integer's digits are split in two, and the largest safe integers.
const splitEdges = fc.constantFrom(1e8 - 1, 1e8, 1e8 + 1, 1e8 * 12_345 + 7, 1e16 - 1e8, 2 ** 53 - 1, -(2 ** 53 - 1), 9_007_199_200_000_000, 1_796_190_412_466);
const anyNumber = fc.oneof(number, fc.double(), splitEdges, fc.constantFrom(-0, 0.5, 1e21, -1e-7, 2 ** 53, -(2 ** 53) - 2));

test('property: the hash fed field by field is the hash of the canonical string (old definition), for any record', () => {
  fc.assert(
    fc.property(
      // Metadata built in the order drawn (insertion order is what a decoded request has).
      contentFields(
        anyNumber,
        fc.array(fc.tuple(metadataKey, tricky), { maxLength: 8 }).map((pairs) => {
          const metadata: Record<string, string> = {};
          for (const [k, v] of pairs) metadata[k] = v;
          return metadata;
        }),
      ),
      (fields) => {
        const r = record(fields);
        assert.equal(hashOf(r, r), canonicalHash(r));
        // The same content given as a registration plus its version fields.
        const { status: reported, overriddenStatus, lastDirtyTimestamp, ...rest } = r;
        assert.equal(hashOf({ ...rest, port: { ...r.port } }, { status: reported, overriddenStatus, lastDirtyTimestamp }), canonicalHash(r));
      },
    ),
    { numRuns: 3_000 },
  );
});

test('property: a stored (compact) entry hashes as the registration and version it was built from', () => {
  const pool = new StringPool(64);
  const octet = fc.integer({ min: 0, max: 255 });
  fc.assert(
    fc.property(
      fc.record({
        host: fc.constantFrom('billing-1.example.internal', 'h', ''),
        ip: fc.oneof(
          fc.tuple(octet, octet, octet, octet).map((o) => o.join('.')),
          fc.constantFrom('::1', '010.0.0.1'),
        ),
        idTail: fc.constantFrom('', ':8080', ':billing:8080'),
        metadata: fc.dictionary(metadataKey, tricky, { maxKeys: 6 }),
        dirty: fc.maxSafeNat(),
        status,
        overriddenStatus: fc.option(status, { nil: undefined }),
      }),
      ({ host, ip, idTail, metadata, dirty, status: effective, overriddenStatus }) => {
        const input = registration({
          instanceId: `${host}${idTail}` || 'i-1',
          hostName: host,
          ipAddr: ip,
          metadata,
          homePageUrl: `http://${host}:8080/`,
          statusPageUrl: `http://${ip}:8080/status`,
        });
        const version = { status: effective, overriddenStatus, lastDirtyTimestamp: dirty, lastUpdatedTimestamp: 5 };
        const entry = new Entry(input, version, pool);
        assert.equal(hashOf(entry, entry), hashOf(input, version));
        assert.equal(hashOf(entry, entry), canonicalHash(entry));
      },
    ),
    { numRuns: 1_000 },
  );
});

test('property: stored entries whose hashes tie compare as their canonical strings do (equal content without building them)', () => {
  // Small domains, and a second entry that takes each field of another draw one time in ten,
  // so that pairs are often the same content or differ in one field; a roomy pool and one
  // that is full at once, so the same URL or map may be shared or not.
  const pools = [new StringPool(), new StringPool(1)];
  const pick = <T>(...values: T[]) => fc.constantFrom(...values);
  const description = fc.record({
    pool: fc.nat({ max: 1 }),
    host: pick('billing-1.internal', 'h', ''),
    ip: pick('10.0.0.1', '10.0.0.2', '::1', '010.0.0.1'),
    id: pick('{host}', '{host}:8080', 'i-1'),
    url: pick('http://{host}:8080/', 'http://{ip}:8080/', 'http://other:8080/', ''),
    metadata: fc.array(fc.tuple(pick('version', 'zone', '__proto__'), pick('1', '2')), { maxLength: 3 }),
    port: pick(8080, 8081),
    secureEnabled: fc.boolean(),
    zone: pick('a', 'b'),
    dirty: pick(1_000, 1_001, 2 ** 26 + 1_000),
    status: pick<InstanceStatus>('UP', 'DOWN'),
    overriddenStatus: pick<InstanceStatus | undefined>(undefined, 'OUT_OF_SERVICE'),
  });
  type Description = typeof description extends fc.Arbitrary<infer D> ? D : never;
  const entryOf = (d: Description): Entry => {
    const metadata: Record<string, string> = {};
    for (const [k, v] of d.metadata) Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
    const input = registration({
      instanceId: d.id.replace('{host}', d.host) || 'i-1',
      hostName: d.host,
      ipAddr: d.ip,
      port: { number: d.port, enabled: true },
      securePort: { number: 8443, enabled: d.secureEnabled },
      zone: d.zone,
      metadata,
      homePageUrl: d.url.replace('{host}', d.host).replace('{ip}', d.ip),
    });
    return new Entry(input, { status: d.status, overriddenStatus: d.overriddenStatus, lastDirtyTimestamp: d.dirty, lastUpdatedTimestamp: 5 }, pools[d.pool]!);
  };
  const taken = fc.array(
    fc.nat({ max: 9 }).map((n) => n === 0),
    { minLength: 12, maxLength: 12 },
  );
  fc.assert(
    fc.property(description, description, taken, (first, other, take) => {
      const keys = Object.keys(first) as (keyof Description)[];
      const second = Object.fromEntries(keys.map((k, i) => [k, take[i] ? other[k] : first[k]])) as Description;
      const a = entryOf(first);
      const b = entryOf(second);
      const ca = canonicalContent(a);
      const cb = canonicalContent(b);
      const expected = a.lastDirtyTimestamp !== b.lastDirtyTimestamp ? Math.sign(a.lastDirtyTimestamp - b.lastDirtyTimestamp) : ca < cb ? -1 : ca > cb ? 1 : 0;
      assert.equal(Math.sign(compareVersions(a, 7, b, 7)), expected);
      assert.equal(a.sameContentAs(b), ca === cb);
    }),
    { numRuns: 5_000 },
  );
});
