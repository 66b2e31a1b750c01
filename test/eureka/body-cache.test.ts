import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BodyCache, type Wanted } from '../../src/eureka/body-cache.js';

/** A document whose version the test moves, and whose builds finish when the test says. */
function document() {
  const builds: { version: string; finish(): void; fail(err: Error): void }[] = [];
  let version = 1;
  const want = (): Wanted => {
    const at = String(version);
    return {
      version: at,
      build: () =>
        new Promise<Buffer>((resolve, reject) => {
          builds.push({ version: at, finish: () => resolve(Buffer.from(`body at ${at}`)), fail: reject });
        }),
    };
  };
  return { builds, want, change: () => void version++ };
}

const text = async (body: Promise<Buffer>): Promise<string> => (await body).toString();

describe('BodyCache', () => {
  test('one build per version, shared by every read of it', async () => {
    const cache = new BodyCache(1024);
    const doc = document();
    const reads = [cache.get('json', doc.want), cache.get('json', doc.want)];
    assert.equal(doc.builds.length, 1);
    doc.builds[0]!.finish();
    assert.deepEqual(await Promise.all(reads.map(text)), ['body at 1', 'body at 1']);
    assert.equal(await text(cache.get('json', doc.want)), 'body at 1');
    doc.change();
    const next = cache.get('json', doc.want);
    doc.builds[1]!.finish();
    assert.equal(await text(next), 'body at 2', 'a read after a change is never stale');
  });

  test('reads that want a newer version while a build runs share one build, made when it ends', async () => {
    const cache = new BodyCache(1024);
    const doc = document();
    const first = cache.get('json', doc.want);
    doc.change();
    const second = cache.get('json', doc.want);
    doc.change();
    const third = cache.get('json', doc.want);
    assert.equal(doc.builds.length, 1, 'nothing more starts while a build of the same kind runs');
    doc.change();
    doc.builds[0]!.finish();
    assert.equal(await text(first), 'body at 1');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(doc.builds.length, 2);
    assert.equal(doc.builds[1]!.version, '4', 'built from the registry as it is when the running build ends');
    doc.builds[1]!.finish();
    assert.deepEqual(await Promise.all([second, third].map(text)), ['body at 4', 'body at 4']);
  });

  test('kinds build independently; a failed build is not kept', async () => {
    const cache = new BodyCache(1024);
    const doc = document();
    const gzip = cache.get('json+gzip', doc.want);
    const plain = cache.get('json', doc.want);
    assert.equal(doc.builds.length, 2);
    doc.builds[0]!.fail(new Error('boom'));
    doc.builds[1]!.finish();
    await assert.rejects(gzip, /boom/);
    assert.equal(await text(plain), 'body at 1');
    const again = cache.get('json+gzip', doc.want);
    assert.equal(doc.builds.length, 3);
    doc.builds[2]!.finish();
    assert.equal(await text(again), 'body at 1');
  });

  test('plain bodies above the bound are built again; gzip ones are kept', async () => {
    const cache = new BodyCache(4);
    const doc = document();
    for (const key of ['json', 'json+gzip']) {
      const read = cache.get(key, doc.want);
      doc.builds.at(-1)!.finish();
      await read;
    }
    const plain = cache.get('json', doc.want);
    void cache.get('json+gzip', doc.want);
    assert.equal(doc.builds.length, 3, 'only the plain body is built again');
    doc.builds[2]!.finish();
    assert.equal(await text(plain), 'body at 1');
  });
});
