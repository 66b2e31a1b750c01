import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { FakeClock, SystemClock } from '../../src/core/clock.js';
import { Registry } from '../../src/core/registry.js';
import * as pb from '../../src/gen/roster/v1/replication_service.js';
import { GrpcPeerLink } from '../../src/grpc/peer-link.js';
import { createReplicationService } from '../../src/grpc/replication-service.js';
import { startGrpcServer } from '../../src/grpc/server.js';
import { Replicator } from '../../src/replication/replicator.js';
import { registration } from '../core/fixtures.js';
import { waitFor } from '../support/wait.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const logger = pino({ level: 'silent' });
const INSTANCES = 20;

describe('a one-way cut between peers', () => {
  test('a node does not evict live instances whose renewals reach a peer it cannot hear from, and resumes when the link heals', async () => {
    const clock = new SystemClock();
    // B only receives, on a fake clock the test advances (a loaded machine cannot make its leases
    // lapse); self-preservation off, so only the peer hold can explain instances surviving.
    const bClock = new FakeClock();
    const b = new Registry({ clock: bClock, selfPreservation: false, evictionIntervalMs: 100, peerHoldMs: 60_000 });
    b.start();
    const service = createReplicationService({ registry: b, nodeId: 'node-b', clock: bClock, logger });
    const server = await startGrpcServer({
      registry: b,
      logger,
      extraServices: [{ definition: pb.ReplicationServiceService, implementation: service.implementation as unknown as grpc.UntypedServiceImplementation }],
    });
    const proxy = await TcpProxy.start(server.port);
    let replicator: Replicator | undefined;
    const c = new Registry({ clock, selfPreservation: false, evictionIntervalMs: 100, onLocalWrite: (w) => replicator?.publish(w) });
    c.start();
    replicator = new Replicator({
      nodeId: 'node-c',
      registry: c,
      clock,
      logger,
      connect: (address) => new GrpcPeerLink(address, { token: undefined, nodeId: 'node-c' }),
      resolvePeers: async () => [proxy.address],
      dispatcher: { backoffMinMs: 100, backoffMaxMs: 200 },
    });
    const ids = Array.from({ length: INSTANCES }, (_, i) => `i-${i}`);
    const alive = new Set(ids);
    const renewAtC = setInterval(() => {
      for (const id of alive) c.heartbeat('billing', id);
    }, 250);
    try {
      await replicator.start();
      for (const id of ids) c.register(registration({ instanceId: id, renewalIntervalSecs: 1, durationSecs: 3 }));
      await waitFor('B to hold every instance', () => b.stats().size === INSTANCES);

      proxy.cut(true);
      await waitFor('B to notice it no longer hears from C', () => b.stats().unreachablePeers === 1);
      // Well past the 3 s leases: without the hold B would evict every instance it no longer hears about.
      bClock.advance(5_000);
      assert.equal(b.stats().size, INSTANCES, 'B evicted none of the live instances');
      assert.equal(b.stats().evictionsTotal, 0);
      assert.equal(b.stats().heldForUnreachablePeers, INSTANCES);

      proxy.accept();
      await waitFor('the hold to end once C is heard from again', () => {
        bClock.advance(50);
        return b.stats().unreachablePeers === 0 && b.stats().heldForUnreachablePeers === 0;
      });
      assert.equal(b.stats().size, INSTANCES);

      // Instances that really stop are evicted as usual once the link is healthy.
      alive.delete('i-0');
      alive.delete('i-1');
      await waitFor('B to evict the instances that stopped renewing', () => {
        bClock.advance(50);
        return b.stats().size === INSTANCES - 2;
      });
      assert.equal(b.record('billing', 'i-0'), undefined);
    } finally {
      clearInterval(renewAtC);
      await replicator.stop(0);
      b.stop();
      c.stop();
      await proxy.close();
      await server.shutdown(0);
    }
  });
});
