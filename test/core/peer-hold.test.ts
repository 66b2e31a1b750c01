import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { InstanceRecord } from '../../src/core/types.js';
import { newRegistry, registration } from './fixtures.js';

const replicated = (instanceId: string): InstanceRecord => ({
  ...registration({ instanceId, renewalIntervalSecs: 5, durationSecs: 10, lastDirtyTimestamp: 1_000 }),
  overriddenStatus: undefined,
  lastUpdatedTimestamp: 0,
});

describe('peer-aware eviction', () => {
  test('a lease renewed through a peer this node cannot hear from is held past expiry, then evicted when the hold runs out', () => {
    const { registry, clock } = newRegistry({ peerHoldMs: 60_000, selfPreservation: false });
    registry.applyRecord(replicated('via-c'), undefined, 'node-c');
    registry.register(registration({ instanceId: 'local', renewalIntervalSecs: 5, durationSecs: 10 }));
    registry.setPeerReachable('node-c', false);
    clock.advance(12_000);
    assert.equal(registry.record('billing', 'local'), undefined, 'a lease renewed by a client here is evicted at expiry');
    assert.ok(registry.record('billing', 'via-c'), 'held: its renewals may be reaching node-c');
    assert.equal(registry.stats().heldForUnreachablePeers, 1);
    clock.advance(50_000);
    assert.equal(registry.record('billing', 'via-c'), undefined, 'evicted once the hold ran out');
    assert.equal(registry.stats().heldForUnreachablePeers, 0);
  });

  test('when the peer is heard from again, its held leases get one renewal interval for its renewals to arrive', () => {
    const { registry, clock } = newRegistry({ peerHoldMs: 60_000, selfPreservation: false });
    registry.applyRecord(replicated('renewed'), undefined, 'node-c');
    registry.applyRecord(replicated('dead'), undefined, 'node-c');
    registry.setPeerReachable('node-c', false);
    clock.advance(15_000);
    assert.equal(registry.stats().heldForUnreachablePeers, 2);
    registry.setPeerReachable('node-c', true);
    clock.advance(1_000);
    assert.equal(registry.stats().heldForUnreachablePeers, 2, 'the healed link has not delivered its backlog yet');
    // The healed link carries the live instance's renewal: expired here, so the peer re-registers it.
    assert.equal(registry.heartbeat('billing', 'renewed', 1_000, 'replication', 'node-c').kind, 'not_found');
    registry.applyRecord(replicated('renewed'), undefined, 'node-c');
    clock.advance(5_000);
    assert.ok(registry.record('billing', 'renewed'));
    assert.equal(registry.record('billing', 'dead'), undefined, 'evicted once a renewal interval passed with no renewal');
    assert.equal(registry.stats().heldForUnreachablePeers, 0);
  });

  test('a client heartbeat here takes the lease back from the peer', () => {
    const { registry, clock } = newRegistry({ peerHoldMs: 60_000, selfPreservation: false });
    registry.applyRecord(replicated('moved'), undefined, 'node-c');
    clock.advance(5_000);
    registry.heartbeat('billing', 'moved', 0, 'client');
    registry.setPeerReachable('node-c', false);
    clock.advance(12_000);
    assert.equal(registry.record('billing', 'moved'), undefined, 'renewed here last: nothing to wait for');
  });
});
