import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { gunzipSync } from 'node:zlib';
import { FakeClock } from '../../src/core/clock.js';
import { Registry } from '../../src/core/registry.js';
import { InstanceStatus } from '../../src/gen/roster/v1/instance.js';
import { ListApplicationsResponse } from '../../src/gen/roster/v1/registry_service.js';
import { frameBody } from '../../src/grpc/response-compression.js';
import { DEFAULT_MAX_LEASE_AGE_MS, SnapshotCache, type SnapshotCacheOptions, type SnapshotReader } from '../../src/grpc/snapshot-cache.js';
import { registration } from './helpers.js';

const CHUNK = 10;
const pad = (n: number): string => String(n).padStart(4, '0');

function setup(count: number, options: Partial<SnapshotCacheOptions> = {}): { clock: FakeClock; registry: Registry; cache: SnapshotCache } {
  const clock = new FakeClock();
  const registry = new Registry({ clock });
  for (let i = 0; i < count; i++) registry.register(registration({ app: `app-${i % 3}`, instanceId: `i-${pad(i)}` }));
  const cache = new SnapshotCache({ registry, clock, nodeId: 'node-a', chunkSize: CHUNK, messageBytes: 3 * 1024 * 1024, ...options });
  return { clock, registry, cache };
}

/** Every frame of a reader (bounded: a snapshot of n instances has at most n + 1 chunks). */
async function frames(reader: SnapshotReader, bound = 1000): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let i = 0; i < bound; i++) {
    const frame = await reader.next();
    if (frame === undefined) return out;
    out.push(frame);
  }
  throw new Error(`more than ${bound} frames`);
}

function decode(frame: Buffer): ListApplicationsResponse {
  const body = frameBody(frame);
  return ListApplicationsResponse.decode(frame[0] === 1 ? gunzipSync(body) : body);
}

const ids = (all: Buffer[]): string[] => all.flatMap((f) => decode(f).instances.map((i) => `${i.app}/${i.instanceId}`));

describe('SnapshotCache', () => {
  test('one revision is encoded once and shared by concurrent and later readers, frames and all', async () => {
    const { cache } = setup(35);
    const a = cache.open(CHUNK, false);
    const b = cache.open(CHUNK, false);
    const firstOfA = await a.next();
    const [restOfA, allOfB] = [await frames(a), await frames(b)];
    const later = await frames(cache.open(CHUNK, false));
    const allOfA = [firstOfA!, ...restOfA];
    assert.equal(allOfA.length, 4);
    assert.deepEqual(
      allOfA.map((f) => decode(f).instances.length),
      [10, 10, 10, 5],
    );
    for (let i = 0; i < 4; i++) {
      assert.equal(allOfB[i], allOfA[i], `frame ${i} is the same buffer for a concurrent reader`);
      assert.equal(later[i], allOfA[i], `frame ${i} is the same buffer for a later reader`);
    }
    const stats = cache.stats();
    assert.equal(stats.builds, 1);
    assert.equal(stats.hits, 2);
    assert.equal(
      stats.kept?.plainBytes,
      allOfA.reduce((sum, f) => sum + f.length, 0),
    );
  });

  test('a read after any change reflects it; a reader already under way keeps its own revision', async () => {
    const { cache, registry } = setup(25);
    const before = cache.open(CHUNK, false);
    await before.next();
    registry.register(registration({ app: 'app-0', instanceId: 'i-new' }));
    registry.cancel('app-1', 'i-0001');
    registry.setStatusOverride('app-2', 'i-0002', 'OUT_OF_SERVICE');
    const after = await frames(cache.open(CHUNK, false));
    assert.equal(decode(after[0]!).revision, registry.revision);
    const seen = ids(after);
    assert.ok(seen.includes('app-0/i-new') && !seen.includes('app-1/i-0001'));
    const overridden = after.flatMap((f) => decode(f).instances).find((i) => i.instanceId === 'i-0002');
    assert.equal(overridden?.overriddenStatus, InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE);
    const rest = await frames(before);
    assert.equal(rest.length, 2, 'the earlier reader finishes the snapshot it started');
    assert.ok(rest.every((f) => decode(f).revision === 25));
    assert.equal(cache.stats().builds, 2);
    assert.equal(cache.stats().kept?.revision, registry.revision, 'only the current revision is kept');
  });

  test(`lease timestamps are at most ${DEFAULT_MAX_LEASE_AGE_MS / 1000} s old: an older entry is rebuilt`, async () => {
    const { cache, registry, clock } = setup(3);
    const renewedAt = (all: Buffer[]): number => decode(all[0]!).instances.find((i) => i.instanceId === 'i-0000')!.lease!.lastRenewalTimestamp;
    const first = await frames(cache.open(CHUNK, false));
    clock.advance(DEFAULT_MAX_LEASE_AGE_MS);
    registry.heartbeat('app-0', 'i-0000', 0, 'client');
    const stillCached = await frames(cache.open(CHUNK, false));
    assert.equal(stillCached[0], first[0], 'a renewal does not move the revision: the entry stands until it is too old');
    assert.equal(renewedAt(stillCached), renewedAt(first));
    clock.advance(1);
    const rebuilt = await frames(cache.open(CHUNK, false));
    assert.equal(renewedAt(rebuilt), renewedAt(first) + DEFAULT_MAX_LEASE_AGE_MS);
    assert.equal(cache.stats().builds, 2);
  });

  test('gzip frames decompress to the plain ones and are compressed once per revision', async () => {
    const { cache } = setup(25);
    const plain = await frames(cache.open(CHUNK, false));
    const zipped = await frames(cache.open(CHUNK, true));
    const again = await frames(cache.open(CHUNK, true));
    assert.equal(zipped.length, plain.length);
    for (let i = 0; i < plain.length; i++) {
      assert.equal(zipped[i]![0], 1, 'compressed flag');
      assert.equal(plain[i]![0], 0, 'uncompressed flag');
      assert.equal(zipped[i]!.readUInt32BE(1), zipped[i]!.length - 5, 'frame length');
      assert.deepEqual(gunzipSync(frameBody(zipped[i]!)), frameBody(plain[i]!));
      assert.equal(again[i], zipped[i]);
    }
    assert.ok(cache.stats().kept!.gzipBytes > 0);
    assert.equal(cache.stats().builds, 1);
  });

  test('chunks run across apps in order, each of at most chunk_size instances, and end early at the byte budget', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 12 }), { maxLength: 6 }),
        fc.integer({ min: 1, max: 9 }),
        // Past the chunk header's size: a budget of 300 bytes ends chunks after an instance or two.
        fc.constantFrom(300, 700, 3 * 1024 * 1024),
        async (appSizes, chunkSize, messageBytes) => {
          const clock = new FakeClock();
          const registry = new Registry({ clock });
          appSizes.forEach((size, a) => {
            for (let i = 0; i < size; i++) registry.register(registration({ app: `app-${a}`, instanceId: `i-${pad(i)}` }));
          });
          const cache = new SnapshotCache({ registry, clock, nodeId: 'node-a', chunkSize, messageBytes });
          const all = await frames(cache.open(chunkSize, false));
          const expected = registry.snapshot().instances.map((v) => `${v.record.app}/${v.record.instanceId}`);
          assert.deepEqual(ids(all), expected);
          const total = appSizes.reduce((sum, n) => sum + n, 0);
          for (const frame of all) {
            const chunk = decode(frame);
            assert.equal(chunk.totalInstances, total);
            assert.ok(chunk.instances.length <= chunkSize && (total === 0 || chunk.instances.length > 0));
          }
          if (messageBytes > 1024 * 1024) assert.equal(all.length, Math.max(1, Math.ceil(total / chunkSize)));
        },
      ),
      { numRuns: 150 },
    );
  });

  test('an empty registry is one chunk with no instances', async () => {
    const { cache } = setup(0);
    for (const compressed of [false, true]) {
      const all = await frames(cache.open(CHUNK, compressed));
      assert.deepEqual(all.map(decode), [{ revision: 0, reconcileHash: '', totalInstances: 0, instances: [], nodeId: 'node-a' }]);
    }
  });

  test('above the byte cap, and for other chunk sizes, frames are encoded per read and not kept', async () => {
    const { cache, registry } = setup(40, { maxBytes: 1000 });
    const one = await frames(cache.open(CHUNK, true));
    const two = await frames(cache.open(CHUNK, false));
    assert.deepEqual(ids(one), ids(two));
    assert.equal(ids(one).length, 40);
    assert.notEqual(one[0], two[0]);
    assert.equal(cache.stats().builds, 2);
    assert.equal(cache.stats().kept, undefined);

    const small = setup(40);
    await frames(small.cache.open(CHUNK, false));
    const other = await frames(small.cache.open(7, false));
    assert.deepEqual(
      other.map((f) => decode(f).instances.length),
      [7, 7, 7, 7, 7, 5],
    );
    await frames(small.cache.open(CHUNK, false));
    assert.deepEqual({ builds: small.cache.stats().builds, hits: small.cache.stats().hits }, { builds: 2, hits: 1 }, 'another chunk size leaves the kept entry alone');
    assert.equal(registry.revision, 40);
  });
});
