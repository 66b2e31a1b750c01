import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import { RegistryError } from '../../src/core/errors.js';
import { Registry } from '../../src/core/registry.js';
import { registration } from './fixtures.js';

function refusedAtCapacity(write: () => unknown, pattern: RegExp): void {
  assert.throws(write, (err: unknown) => err instanceof RegistryError && err.kind === 'resource_exhausted' && pattern.test(err.message));
}

describe('capacity limits', () => {
  test('a full registry refuses new instances RESOURCE_EXHAUSTED, still re-registers known ones, and counts the refusals', () => {
    const registry = new Registry({ clock: new FakeClock(), maxInstances: 3 });
    for (const id of ['a', 'b', 'c']) registry.register(registration({ instanceId: id }));
    const before = registry.snapshot();
    refusedAtCapacity(() => registry.register(registration({ app: 'other', instanceId: 'd' })), /registry is full: 3 instances \(limit 3\)/);
    assert.deepEqual(registry.snapshot(), before, 'nothing changed');
    registry.register(registration({ instanceId: 'a', status: 'DOWN', lastDirtyTimestamp: 5_000 }));
    assert.equal(registry.get('billing', 'a').record.status, 'DOWN');
    registry.cancel('billing', 'c');
    registry.register(registration({ app: 'other', instanceId: 'd' }));
    assert.deepEqual(registry.stats().capacityRefusals, { instances: 1, instances_per_app: 0, metadata_bytes: 0 });
  });

  test('an application at its limit refuses new instances; other applications are fine', () => {
    const registry = new Registry({ clock: new FakeClock(), maxInstancesPerApp: 2 });
    registry.register(registration({ instanceId: 'a' }));
    registry.register(registration({ instanceId: 'b' }));
    refusedAtCapacity(() => registry.register(registration({ instanceId: 'c' })), /application billing is full: 2 instances \(limit 2\)/);
    registry.register(registration({ app: 'other', instanceId: 'c' }));
    assert.equal(registry.stats().capacityRefusals.instances_per_app, 1);
  });

  test('metadata of all instances is bounded, on register and on UpdateMetadata, and freed by cancels', () => {
    const registry = new Registry({ clock: new FakeClock(), maxMetadataBytes: 2_000 });
    registry.register(registration({ instanceId: 'a', metadata: { k: 'x'.repeat(900) } }));
    assert.equal(registry.stats().metadataBytes, 901);
    refusedAtCapacity(() => registry.register(registration({ instanceId: 'b', metadata: { k: 'x'.repeat(600), l: 'x'.repeat(600) } })), /metadata of all instances would exceed 2000 bytes/);
    assert.equal(registry.stats().size, 1, 'nothing stored');
    registry.register(registration({ instanceId: 'b', metadata: { k: 'x'.repeat(1000) } }));
    refusedAtCapacity(() => registry.updateMetadata('billing', 'b', { more: 'y'.repeat(200) }, []), /metadata/);
    assert.equal(registry.get('billing', 'b').record.metadata['more'], undefined, 'unchanged');
    registry.cancel('billing', 'a');
    assert.equal(registry.stats().metadataBytes, 1001);
    registry.updateMetadata('billing', 'b', { more: 'y'.repeat(200) }, []);
    assert.deepEqual(registry.stats().capacityRefusals, { instances: 0, instances_per_app: 0, metadata_bytes: 2 });
  });

  test('replicated records are never refused: the replicas must not disagree', () => {
    const registry = new Registry({ clock: new FakeClock(), maxInstances: 1 });
    registry.register(registration({ instanceId: 'a' }));
    assert.equal(registry.applyRecord({ ...registration({ instanceId: 'b', lastDirtyTimestamp: 1_000 }), overriddenStatus: undefined, lastUpdatedTimestamp: 0 }), 'applied');
    assert.equal(registry.stats().size, 2);
  });
});
