import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { InstanceRecord, InstanceStatus } from '../../src/core/types.js';
import { canonicalContent, compareVersions, contentHash } from '../../src/core/version.js';
import { registration } from './fixtures.js';

/** The hash as first defined: cyrb53 of the canonical string. Nodes of either version must agree. */
function referenceHash(r: InstanceRecord): number {
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
const number = fc.oneof(fc.nat({ max: 65_535 }), fc.maxSafeNat(), fc.integer(), fc.double());

test('property: contentHash equals cyrb53 of the canonical content, whatever the strings and numbers', () => {
  fc.assert(
    fc.property(
      fc.record({
        app: tricky,
        instanceId: tricky,
        hostName: tricky,
        ipAddr: tricky,
        port: fc.record({ number, enabled: fc.boolean() }),
        securePort: fc.record({ number, enabled: fc.boolean() }),
        status,
        overriddenStatus: fc.option(status, { nil: undefined }),
        vipAddress: tricky,
        secureVipAddress: tricky,
        zone: tricky,
        region: tricky,
        metadata: fc.dictionary(tricky, tricky, { maxKeys: 5 }),
        homePageUrl: tricky,
        statusPageUrl: tricky,
        healthCheckUrl: tricky,
        renewalIntervalSecs: number,
        durationSecs: number,
        lastDirtyTimestamp: number,
      }),
      (fields) => {
        const r = record(fields);
        assert.equal(contentHash(r), referenceHash(r));
      },
    ),
    { numRuns: 2_000 },
  );
});

test('contentHash: a known record hashes to the reference value, and any field change moves it', () => {
  const base = record();
  assert.equal(contentHash(base), referenceHash(base));
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
