import assert from 'node:assert/strict';
import { setImmediate as nextTick } from 'node:timers/promises';
import { describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ChangeType, RemovalCause } from '../../src/gen/roster/v1/instance.js';
import { WatchResponse, type GetDeltaResponse, type WatchRequest } from '../../src/gen/roster/v1/registry_service.js';
import { registration, StreamReader, WAIT_MS, withHarness, type Harness } from './helpers.js';

function watch(h: Harness, request: Partial<WatchRequest> = {}): StreamReader<WatchResponse> {
  return new StreamReader(h.client.watch({ app: '', vip: '', nodeId: '', ...request } as WatchRequest, { deadline: Date.now() + 3 * WAIT_MS }));
}

/** Reads until the watcher is at `revision`, returning every change revision seen. */
async function revisionsUntil(reader: StreamReader<WatchResponse>, revision: number): Promise<number[]> {
  const seen: number[] = [];
  for (;;) {
    const m = await reader.next();
    seen.push(...m.changes.map((c) => c.revision));
    if (m.revision >= revision) return seen;
  }
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('Watch', () => {
  test("a cursor issued by another node gets resync_required; this node's own id resumes", () =>
    withHarness({ nodeId: 'node-a' }, async (h) => {
      h.registry.register(registration({ instanceId: 'x' }));
      h.registry.register(registration({ instanceId: 'y' }));
      assert.deepEqual(await watch(h, { sinceRevision: 1, nodeId: 'node-b' }).next(), {
        changes: [],
        revision: 2,
        progress: false,
        resyncRequired: true,
        nodeId: 'node-a',
      });
      const resumed = await watch(h, { sinceRevision: 1, nodeId: 'node-a' }).next();
      assert.deepEqual(
        resumed.changes.map((c) => c.revision),
        [2],
      );
      assert.equal(resumed.nodeId, 'node-a');
      const delta = await new Promise<GetDeltaResponse>((resolve, reject) =>
        h.client.getDelta({ sinceRevision: 1, maxChanges: 0, nodeId: 'node-b' }, (err, res) => (err ? reject(err) : resolve(res))),
      );
      assert.equal(delta.resyncRequired, true);
      assert.equal(delta.nodeId, 'node-a');
    }));

  test('without a cursor: a progress message at the current revision, then live changes', () =>
    withHarness({}, async (h) => {
      h.registry.register(registration({ instanceId: 'old' }));
      const reader = watch(h);
      assert.deepEqual(await reader.next(), { changes: [], revision: 1, progress: true, resyncRequired: false, nodeId: '' });
      h.registry.register(registration());
      const added = await reader.next();
      assert.equal(added.revision, 2);
      assert.deepEqual(
        added.changes.map((c) => [c.revision, c.type, c.instance?.instanceId]),
        [[2, ChangeType.CHANGE_TYPE_ADDED, 'i-1']],
      );
      h.registry.setStatusOverride('billing', 'i-1', 'DOWN');
      assert.equal((await reader.next()).changes[0]?.type, ChangeType.CHANGE_TYPE_MODIFIED);
      h.registry.cancel('billing', 'i-1');
      const deleted = await reader.next();
      assert.equal(deleted.changes[0]?.type, ChangeType.CHANGE_TYPE_DELETED);
      assert.equal(deleted.changes[0]?.instance?.instanceId, 'i-1');
      assert.equal(deleted.revision, 4);
      reader.stream.cancel();
    }));

  test('watch tells evictions from cancels: both DELETED, with the removal cause', () =>
    withHarness({}, async (h) => {
      h.registry.start();
      h.registry.register(registration({ instanceId: 'leaving' }));
      h.registry.register(registration({ instanceId: 'dying', renewalIntervalSecs: 1, durationSecs: 1 }));
      const reader = watch(h);
      await reader.next();
      h.registry.cancel('billing', 'leaving');
      h.clock.advance(2000);
      const seen: [string | undefined, ChangeType, RemovalCause][] = [];
      while (seen.length < 2) for (const c of (await reader.next()).changes) seen.push([c.instance?.instanceId, c.type, c.removal]);
      assert.deepEqual(seen, [
        ['leaving', ChangeType.CHANGE_TYPE_DELETED, RemovalCause.REMOVAL_CAUSE_CANCELLED],
        ['dying', ChangeType.CHANGE_TYPE_DELETED, RemovalCause.REMOVAL_CAUSE_EVICTED],
      ]);
      reader.stream.cancel();
      h.registry.stop();
    }));

  test('changes made in one tick may arrive in one message', () =>
    withHarness({}, async (h) => {
      const reader = watch(h);
      await reader.next();
      for (let i = 0; i < 5; i++) h.registry.register(registration({ instanceId: `i-${i}` }));
      const m = await reader.next();
      assert.deepEqual(
        m.changes.map((c) => c.revision),
        [1, 2, 3, 4, 5],
      );
      assert.equal(m.revision, 5);
      reader.stream.cancel();
    }));

  test('from a cursor: replays the log in pages, then live, every revision exactly once', () =>
    withHarness({}, async (h) => {
      for (let i = 0; i < 3500; i++) h.registry.register(registration({ instanceId: `i-${i}` }));
      const reader = watch(h, { sinceRevision: 100 });
      let writing = true;
      const writer = (async () => {
        for (let i = 0; i < 400; i++) {
          h.registry.updateMetadata('billing', `i-${i}`, { n: String(i) }, []);
          if (i % 10 === 0) await nextTick();
        }
        writing = false;
      })();
      const seen = await revisionsUntil(reader, 3900);
      await writer;
      assert.equal(writing, false);
      assert.deepEqual(seen, range(101, 3900));
      reader.stream.cancel();
    }));

  test('a replayed backlog of large records comes in several messages, each under 256 KiB, every revision once', () =>
    withHarness({ nodeId: 'node-with-a-long-name' }, async (h) => {
      // 8 KiB of metadata each: 100 changes are about 800 KiB.
      const metadata = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, 'v'.repeat(1000)]));
      for (let i = 0; i < 100; i++) h.registry.register(registration({ instanceId: `i-${i}`, metadata }));
      const reader = watch(h, { sinceRevision: 0, nodeId: 'node-with-a-long-name' });
      const seen: number[] = [];
      const sizes: number[] = [];
      while (seen.length < 100) {
        const m = await reader.next();
        sizes.push(WatchResponse.encode(m).finish().length);
        assert.ok(m.changes.length > 0);
        seen.push(...m.changes.map((c) => c.revision));
        assert.equal(m.revision, seen.at(-1));
      }
      assert.deepEqual(seen, range(1, 100));
      assert.ok(sizes.length >= 4, `${sizes.length} messages`);
      for (const size of sizes) assert.ok(size <= 256 * 1024, `a message of ${size} bytes`);
      assert.ok(
        sizes.slice(0, -1).every((size) => size > 200 * 1024),
        `pages filled: ${sizes.join(', ')}`,
      );
      reader.stream.cancel();
    }));

  test('filters by app (any case) and by VIP in either list; filtered changes still move the revision', () =>
    withHarness({ limits: { watchProgressIntervalMs: 50 } }, async (h) => {
      const byApp = watch(h, { app: 'BILLING' });
      const byVip = watch(h, { vip: ' API ' });
      await byApp.next();
      await byVip.next();
      h.registry.register(registration({ app: 'billing', instanceId: 'b', vipAddress: 'web', secureVipAddress: '' }));
      h.registry.register(registration({ app: 'other', instanceId: 'o1', vipAddress: 'web , api', secureVipAddress: '' }));
      h.registry.register(registration({ app: 'other', instanceId: 'o2', vipAddress: 'web', secureVipAddress: 'x,API' }));
      h.registry.register(registration({ app: 'other', instanceId: 'o3', vipAddress: 'apis', secureVipAddress: 'rapi' }));

      const appMessage = await byApp.next();
      assert.deepEqual(
        appMessage.changes.map((c) => c.instance?.instanceId),
        ['b'],
      );
      const vipMessage = await byVip.next();
      assert.deepEqual(
        vipMessage.changes.map((c) => c.instance?.instanceId),
        ['o1', 'o2'],
      );
      assert.equal(vipMessage.revision, 4, 'the filtered-out o3 is included in the revision');
      const progress = await byApp.nextMatching((m) => m.progress);
      assert.deepEqual(progress, { changes: [], revision: 4, progress: true, resyncRequired: false, nodeId: '' });
      byApp.stream.cancel();
      byVip.stream.cancel();
    }));

  test('an idle stream gets progress messages with the current revision', () =>
    withHarness({ limits: { watchProgressIntervalMs: 50 } }, async (h) => {
      h.registry.register(registration());
      const reader = watch(h, { sinceRevision: 0 });
      assert.equal((await reader.next()).changes.length, 1);
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(await reader.next(), { changes: [], revision: 1, progress: true, resyncRequired: false, nodeId: '' });
      }
      reader.stream.cancel();
    }));

  test('a cursor older than the change log, or ahead of the node, gets resync_required and the stream ends OK', () =>
    withHarness({ registryOptions: { changeLogSize: 10 } }, async (h) => {
      for (let i = 0; i < 30; i++) h.registry.register(registration({ instanceId: `i-${i}` }));
      for (const since of [2, 19, 31]) {
        const reader = watch(h, { sinceRevision: since });
        assert.deepEqual(await reader.next(), { changes: [], revision: 30, progress: false, resyncRequired: true, nodeId: '' }, `since ${since}`);
        assert.equal(await reader.ended(), undefined);
      }
      const fine = watch(h, { sinceRevision: 20 });
      assert.deepEqual(
        (await fine.next()).changes.map((c) => c.revision),
        range(21, 30),
      );
      fine.stream.cancel();
    }));

  test('a client that stops reading is told to resync once its backlog passes the bound', () =>
    withHarness({ limits: { maxWatchBacklog: 20 } }, async (h) => {
      const bulky = Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`k${i}`, 'v'.repeat(1000)]));
      h.registry.register(registration({ metadata: bulky }));
      const stream = h.client.watch({ app: '', vip: '', nodeId: '' }, { deadline: Date.now() + WAIT_MS });
      const messages: WatchResponse[] = [];
      // grpc-js applies flow control only once the app has started reading: start, then stop.
      await new Promise<void>((resolve, reject) => {
        stream.once('error', reject);
        stream.on('data', (m: WatchResponse) => {
          messages.push(m);
          resolve();
        });
      });
      stream.pause();
      assert.deepEqual([...messages], [{ changes: [], revision: 1, progress: true, resyncRequired: false, nodeId: '' }]);
      for (let i = 0; i < 600; i++) {
        h.registry.updateMetadata('billing', 'i-1', { n: String(i) }, []);
        await nextTick();
      }
      stream.resume();
      await new Promise<void>((resolve, reject) => {
        stream.on('end', resolve);
        stream.on('error', reject);
      });
      const last = messages.at(-1)!;
      assert.equal(last.resyncRequired, true);
      const delivered = messages.slice(1, -1).flatMap((m) => m.changes.map((c) => c.revision));
      assert.deepEqual(delivered, range(2, delivered.length + 1), 'what was delivered has no gaps');
      assert.ok(delivered.length < 600, `the stream ended early (${delivered.length} changes delivered)`);
      assert.ok(last.revision > delivered.length + 1 + 20, `more than the bound was held back (resync at ${last.revision})`);
    }));

  test('at most maxWatchers streams; a slot frees when one is cancelled', () =>
    withHarness({ limits: { maxWatchers: 2 } }, async (h) => {
      const a = watch(h);
      const b = watch(h);
      await a.next();
      await b.next();
      const refused = await watch(h).ended();
      assert.equal(refused?.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.match(refused.details, /too many watchers/);
      a.stream.cancel();
      let c: StreamReader<WatchResponse> | undefined;
      for (let attempt = 0; attempt < 100 && !c; attempt++) {
        const candidate = watch(h);
        const first = await candidate.next().catch(() => undefined);
        if (first) c = candidate;
      }
      assert.ok(c, 'a new watcher fits once one was cancelled');
      b.stream.cancel();
      c.stream.cancel();
    }));

  test('a bad app filter is INVALID_ARGUMENT', () =>
    withHarness({}, async (h) => {
      const err = await watch(h, { app: 'not an app!' }).ended();
      assert.equal(err?.code, grpc.status.INVALID_ARGUMENT);
      assert.match(err.details, /^app: /);
    }));

  test('shutdown ends open streams with UNAVAILABLE', () =>
    withHarness({}, async (h) => {
      const reader = watch(h);
      await reader.next();
      const stopping = h.server.shutdown(WAIT_MS);
      const err = await reader.ended();
      assert.equal(err?.code, grpc.status.UNAVAILABLE);
      assert.equal(err.details, 'server shutting down');
      await stopping;
      assert.equal(h.registry.stats().size, 0);
    }));
});
