import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crc32, gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { FakeClock } from '../../src/core/clock.js';
import { Registry } from '../../src/core/registry.js';
import { applicationsParts, applicationsShape, groupByApp, instanceElement, type EurekaFormat } from '../../src/eureka/codec.js';
import { crc32Combine, GzipDocument } from '../../src/eureka/gzip-document.js';
import type { RegistrationInput } from '../../src/core/types.js';

function registration(app: string, id: string, version: string): RegistrationInput {
  return {
    app,
    instanceId: id,
    hostName: `${id}.local`,
    ipAddr: '10.0.0.1',
    port: { number: 8080, enabled: true },
    securePort: { number: 443, enabled: false },
    status: 'UP',
    vipAddress: app,
    secureVipAddress: '',
    zone: '',
    region: '',
    metadata: { version },
    homePageUrl: '',
    statusPageUrl: '',
    healthCheckUrl: `http://${id}.local:8080/health`,
    renewalIntervalSecs: 0,
    durationSecs: 0,
    lastDirtyTimestamp: 0,
  };
}

/** The document as the plain (uncached) path writes it: what the gzip body must inflate to. */
function plain(registry: Registry, format: EurekaFormat): string {
  const snapshot = registry.snapshot();
  return [...applicationsParts(groupByApp(snapshot.instances), snapshot.revision, snapshot.reconcileHash, format)].join('');
}

async function gzipped(document: GzipDocument, registry: Registry, format: EurekaFormat): Promise<Buffer> {
  const snapshot = registry.snapshot();
  const items = snapshot.instances.map((view) => ({ view }));
  return document.build(items, applicationsShape(snapshot.revision, snapshot.reconcileHash, format), (item) => instanceElement(item.view, format));
}

describe('GzipDocument', () => {
  test('inflates to the plain document after any sequence of registers and cancels, in both formats', async () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('register' as const), app: fc.integer({ min: 0, max: 3 }), id: fc.integer({ min: 0, max: 400 }), version: fc.string({ maxLength: 6 }) }),
      fc.record({ kind: fc.constant('cancel' as const), app: fc.integer({ min: 0, max: 3 }), id: fc.integer({ min: 0, max: 400 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(op, { minLength: 1, maxLength: 60 }), { minLength: 1, maxLength: 6 }), async (batches) => {
        const registry = new Registry({ clock: new FakeClock() });
        // Enough instances for several segments per app (a segment ends where an id hashes to a boundary).
        for (let i = 0; i < 600; i++) registry.register(registration(`app-${i % 4}`, `i-${i}`, 'v0'));
        const documents = { json: new GzipDocument(), xml: new GzipDocument() };
        for (const batch of batches) {
          for (const step of batch) {
            const app = `app-${step.app}`;
            const id = `i-${step.id}`;
            if (step.kind === 'register') registry.register(registration(app, id, step.version));
            else if (registry.getApplication(app).instances.some((v) => v.record.instanceId === id)) registry.cancel(app, id, 'client');
          }
          for (const format of ['json', 'xml'] as const) {
            const body = await gzipped(documents[format], registry, format);
            assert.equal(gunzipSync(body).toString('utf8'), plain(registry, format));
          }
        }
      }),
      { seed: 1616, numRuns: 15 },
    );
  });

  test('an empty registry is a valid document', async () => {
    const registry = new Registry({ clock: new FakeClock() });
    const body = await gzipped(new GzipDocument(), registry, 'json');
    assert.equal(gunzipSync(body).toString('utf8'), plain(registry, 'json'));
  });

  test('after one change, only the segments around it are compressed again', async () => {
    const registry = new Registry({ clock: new FakeClock() });
    for (let i = 0; i < 2000; i++) registry.register(registration(`app-${i % 10}`, `i-${i}`, 'v0'));
    const document = new GzipDocument();
    await gzipped(document, registry, 'json');
    assert.equal(document.lastBuild.compressed, document.lastBuild.segments);
    assert.ok(document.lastBuild.segments > 10, `only ${document.lastBuild.segments} segments`);
    registry.register(registration('app-3', 'i-1003', 'v1'));
    const after = await gzipped(document, registry, 'json');
    assert.equal(gunzipSync(after).toString('utf8'), plain(registry, 'json'));
    // The changed segment, and the next one (its dictionary starts with the changed text) at most.
    assert.ok(document.lastBuild.compressed <= 2, `${document.lastBuild.compressed} of ${document.lastBuild.segments} segments compressed again`);
    await gzipped(document, registry, 'json');
    assert.equal(document.lastBuild.compressed, 0);
  });

  test('a body being built is of the moment it started, while the registry changes underneath', async () => {
    const registry = new Registry({ clock: new FakeClock() });
    for (let i = 0; i < 3000; i++) registry.register(registration(`app-${i % 3}`, `i-${i}`, 'v0'));
    const expected = plain(registry, 'json');
    const building = gzipped(new GzipDocument(), registry, 'json');
    // While segments are compressed off the event loop: replace and remove versions it holds.
    for (let i = 0; i < 3000; i += 7) registry.register(registration(`app-${i % 3}`, `i-${i}`, 'v1'));
    for (let i = 1; i < 3000; i += 11) registry.cancel(`app-${i % 3}`, `i-${i}`, 'client');
    // Records as they were; lease times as the entries keep them (a removed one has its eviction time).
    const withoutEviction = (text: string): string => text.replace(/"evictionTimestamp":\d+/g, '"evictionTimestamp":0');
    assert.equal(withoutEviction(gunzipSync(await building).toString('utf8')), withoutEviction(expected));
  });

  test('crc32Combine gives the CRC-32 of the concatenation', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), (a, b) => {
        const whole = new Uint8Array([...a, ...b]);
        assert.equal(crc32Combine(crc32(a), crc32(b), b.length), crc32(whole));
      }),
      { seed: 16, numRuns: 200 },
    );
  });
});
