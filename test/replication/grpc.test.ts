import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { SystemClock } from '../../src/core/clock.js';
import { Registry } from '../../src/core/registry.js';
import * as pb from '../../src/gen/roster/v1/replication_service.js';
import { GrpcPeerLink } from '../../src/grpc/peer-link.js';
import { TokenBucket } from '../../src/grpc/rate-limit.js';
import { recordToProto } from '../../src/grpc/convert.js';
import { createReplicationService } from '../../src/grpc/replication-service.js';
import { startGrpcServer, type GrpcServerHandle } from '../../src/grpc/server.js';
import { buildPolicy } from '../../src/security/credentials-file.js';
import { Replicator, type ReplicatorOptions } from '../../src/replication/replicator.js';
import { registration } from '../core/fixtures.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const logger = pino({ level: 'silent' });

interface TestNode {
  registry: Registry;
  replicator: Replicator;
  server: GrpcServerHandle;
  address: string;
}

/** Nodes on real gRPC servers on 127.0.0.1:0; each gets its peers once all ports are known. */
async function cluster(size: number, token: string | undefined, start = true): Promise<TestNode[]> {
  const clock = new SystemClock();
  const nodes: TestNode[] = [];
  const addresses: string[] = [];
  const policy = buildPolicy({ ...(token !== undefined ? { clusterToken: token } : {}), mtls: false });
  for (let i = 0; i < size; i++) {
    let replicator: Replicator | undefined;
    const registry = new Registry({ clock, onLocalWrite: (w) => replicator?.publish(w) });
    const nodeId = `node-${i}`;
    const server = await startGrpcServer({
      registry,
      logger,
      policy: () => policy,
      extraServices: [
        {
          definition: pb.ReplicationServiceService,
          implementation: createReplicationService({ registry, nodeId, clock, logger }).implementation as unknown as grpc.UntypedServiceImplementation,
        },
      ],
    });
    const address = `127.0.0.1:${server.port}`;
    addresses.push(address);
    replicator = new Replicator({
      nodeId,
      registry,
      clock,
      logger,
      connect: (a) => new GrpcPeerLink(a, { token }),
      resolvePeers: async () => addresses.filter((a) => a !== address),
      startupWaitMs: 2_000,
    });
    nodes.push({ registry, replicator, server, address });
  }
  if (start) for (const node of nodes) await node.replicator.start();
  return nodes;
}

async function shutdown(nodes: TestNode[]): Promise<void> {
  for (const n of nodes) {
    await n.replicator.stop(500);
    await n.server.shutdown(0);
  }
}

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('replication over gRPC', () => {
  const started: TestNode[][] = [];
  after(async () => {
    for (const nodes of started) await shutdown(nodes);
  });

  test('writes, heartbeats and cancels reach every peer over the Replicate streams', async () => {
    const nodes = await cluster(3, 'secret');
    started.push(nodes);
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode];
    a.registry.register(registration());
    await until(() => b.registry.record('billing', 'i-1') !== undefined && c.registry.record('billing', 'i-1') !== undefined);
    c.registry.setStatusOverride('billing', 'i-1', 'OUT_OF_SERVICE');
    await until(() => a.registry.record('billing', 'i-1')?.status === 'OUT_OF_SERVICE');
    b.registry.cancel('billing', 'i-1');
    await until(() => a.registry.stats().size === 0 && c.registry.stats().size === 0);
    for (const n of nodes) assert.ok(n.replicator.peers().every((p) => p.connected));
  });

  test('a peer without the cluster token gets UNAUTHENTICATED and changes nothing', async () => {
    const nodes = await cluster(1, 'secret');
    started.push(nodes);
    const target = nodes[0]!;
    for (const token of [undefined, 'wrong']) {
      const client = new pb.ReplicationServiceClient(target.address, grpc.credentials.createInsecure());
      const metadata = new grpc.Metadata();
      if (token) metadata.set('authorization', `Bearer ${token}`);
      const record = { ...registration(), overriddenStatus: undefined, lastUpdatedTimestamp: 0 };
      const code = await new Promise<grpc.status>((resolve) => {
        const call = client.replicate(metadata);
        call.on('error', (err: grpc.ServiceError) => resolve(err.code));
        call.on('data', () => resolve(grpc.status.OK));
        call.write({
          batchId: 1,
          tasks: [{ action: pb.ReplicationAction.REPLICATION_ACTION_REGISTER, instance: recordToProto(record), originTimestamp: 0 }],
        });
      });
      assert.equal(code, grpc.status.UNAUTHENTICATED);
      const digest = await new Promise<grpc.ServiceError | null>((resolve) => client.digest({}, metadata, (err) => resolve(err)));
      assert.equal(digest?.code, grpc.status.UNAUTHENTICATED);
      client.close();
    }
    assert.equal(target.registry.stats().size, 0);
  });

  test('a node that starts after its peer catches up from a snapshot before serving reads', async () => {
    const nodes = await cluster(2, undefined, false);
    started.push(nodes);
    const [a, b] = nodes as [TestNode, TestNode];
    for (let i = 0; i < 2_500; i++) a.registry.register(registration({ instanceId: `i-${i}` }));
    a.registry.register(registration({ instanceId: 'cancelled' }));
    a.registry.cancel('billing', 'cancelled');
    await b.replicator.start();
    assert.equal(b.replicator.ready, false);
    await until(() => b.replicator.ready);
    assert.equal(b.registry.stats().size, 2_500);
    assert.ok(b.registry.tombstones().some((t) => t.instanceId === 'cancelled' && t.cancelled));
  });

  test('a healed link is redialled when the channel reconnects, not after the grown backoff', async () => {
    let proxy: TcpProxy | undefined;
    // A backoff of 20 s: only the reachability watch can explain a quick redial.
    const pair = await senderAndPeer({
      via: async (port) => (proxy = await TcpProxy.start(port)).address,
      dispatcher: { backoffMinMs: 20_000, backoffMaxMs: 20_000 },
    });
    try {
      await until(() => pair.peer()?.connected === true);
      proxy!.cut(true);
      await until(() => pair.peer()?.connected === false);
      await new Promise((r) => setTimeout(r, 500));
      proxy!.accept();
      await until(() => pair.peer()?.connected === true, 8_000);
      pair.source.register(registration());
      await until(() => pair.target.stats().size === 1);
    } finally {
      await pair.stop();
      await proxy?.close();
    }
  });

  test('an overloaded peer answers RESOURCE_EXHAUSTED per task; the sender pauses, resends, and everything arrives', async () => {
    const pair = await senderAndPeer({
      limiter: (clock) => new TokenBucket({ ratePerSecond: 40, burst: 10, clock }),
      dispatcher: { overloadPauseMs: 200 },
    });
    try {
      for (let i = 0; i < 40; i++) pair.source.register(registration({ instanceId: `i-${i}` }));
      await until(() => pair.peer()!.pausedUntil > 0);
      await until(() => pair.target.stats().size === 40, 10_000);
      assert.equal(pair.peer()!.dropped, 0);
    } finally {
      await pair.stop();
    }
  });
});

/**
 * A sending node (registry + replicator, no server) and one receiving node on a real gRPC
 * server; `via` may put something (a proxy) between them.
 */
async function senderAndPeer(options: { via?: (port: number) => Promise<string>; limiter?: (clock: SystemClock) => TokenBucket; dispatcher?: ReplicatorOptions['dispatcher'] }) {
  const clock = new SystemClock();
  const target = new Registry({ clock });
  const limiter = options.limiter?.(clock);
  const service = createReplicationService({ registry: target, nodeId: 'b', clock, logger, ...(limiter ? { limiter } : {}) });
  const server = await startGrpcServer({
    registry: target,
    logger,
    extraServices: [{ definition: pb.ReplicationServiceService, implementation: service.implementation as unknown as grpc.UntypedServiceImplementation }],
  });
  const address = options.via ? await options.via(server.port) : `127.0.0.1:${server.port}`;
  let replicator: Replicator | undefined;
  const source = new Registry({ clock, onLocalWrite: (w) => replicator?.publish(w) });
  replicator = new Replicator({
    nodeId: 'a',
    registry: source,
    clock,
    logger,
    connect: (a) => new GrpcPeerLink(a, { token: undefined }),
    resolvePeers: async () => [address],
    ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
  });
  await replicator.start();
  return {
    source,
    target,
    peer: () => replicator!.peers()[0],
    async stop() {
      await replicator!.stop(0);
      await server.shutdown(0);
    },
  };
}
