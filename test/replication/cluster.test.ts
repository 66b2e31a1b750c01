import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { registration } from '../core/fixtures.js';
import { SimNetwork, contents } from './harness.js';

async function threeNodes(): Promise<SimNetwork> {
  const net = new SimNetwork();
  const all = ['a', 'b', 'c'];
  for (const address of all)
    net.addNode(
      address,
      all.filter((x) => x !== address),
    );
  for (const node of net.nodes.values()) await node.replicator.start();
  await net.run(100);
  return net;
}

async function stopAll(net: SimNetwork): Promise<void> {
  for (const node of net.nodes.values()) await node.replicator.stop(0);
}

describe('cluster (in-process, one fake clock)', () => {
  test('a write at one node reaches every peer within milliseconds', async () => {
    const net = await threeNodes();
    net.node('a').registry.register(registration());
    await net.run(50);
    for (const n of ['b', 'c']) assert.equal(net.node(n).registry.get('billing', 'i-1').record.hostName, registration().hostName);
    net.node('a').registry.cancel('billing', 'i-1');
    await net.run(50);
    for (const n of ['b', 'c']) assert.equal(net.node(n).registry.stats().size, 0);
    await stopAll(net);
  });

  test('no re-replication: a replicated write is not sent on by the peer that received it', async () => {
    const net = await threeNodes();
    net.node('a').registry.register(registration());
    net.node('a').registry.heartbeat('billing', 'i-1');
    await net.run(50);
    for (const n of ['b', 'c']) {
      for (const peer of net.node(n).replicator.peers()) assert.equal(peer.tasksSent, 0, `${n} → ${peer.peer}`);
    }
    await stopAll(net);
  });

  test('self-skip: a node listed among its own peers recognises itself and drops it', async () => {
    const net = new SimNetwork();
    const node = net.addNode('a', ['a', 'b']);
    net.addNode('b', ['a']);
    await node.replicator.start();
    await net.run(100);
    assert.deepEqual(
      node.replicator.peers().map((p) => p.peer),
      ['b'],
    );
    await stopAll(net);
  });

  test('peer removal: a peer that leaves the list is shut down, a new one dialled', async () => {
    const net = new SimNetwork();
    let peers = ['b'];
    net.addNode('b', []);
    net.addNode('c', []);
    const a = net.addNode('a', () => peers);
    await a.replicator.start();
    assert.deepEqual(
      a.replicator.peers().map((p) => p.peer),
      ['b'],
    );
    peers = ['c'];
    await a.replicator.refreshPeers();
    assert.deepEqual(
      a.replicator.peers().map((p) => p.peer),
      ['c'],
    );
    a.registry.register(registration());
    await net.run(50);
    assert.equal(net.node('c').registry.stats().size, 1);
    assert.equal(net.node('b').registry.stats().size, 0);
    await stopAll(net);
  });

  test('start-up: a new node pulls a snapshot from a peer before it is ready', async () => {
    const net = new SimNetwork();
    const a = net.addNode('a', []);
    await a.replicator.start();
    for (let i = 0; i < 5; i++) a.registry.register(registration({ instanceId: `i-${i}` }));
    a.registry.register(registration({ instanceId: 'gone' }));
    a.registry.cancel('billing', 'gone');
    const d = net.addNode('d', ['a']);
    await d.replicator.start();
    assert.equal(d.replicator.ready, false);
    await net.run(100);
    assert.equal(d.replicator.ready, true);
    assert.deepEqual(contents(d.registry), contents(a.registry));
    await stopAll(net);
  });

  test('start-up: with no peer reachable, reads wait (bounded) and then serve', async () => {
    const net = new SimNetwork();
    net.addNode('a', []);
    net.kill('a');
    const d = net.addNode('d', ['a'], { startupWaitMs: 10_000 });
    await d.replicator.start();
    await net.run(9_000, 50);
    assert.equal(d.replicator.ready, false);
    await net.run(2_000, 50);
    assert.equal(d.replicator.ready, true);
    await stopAll(net);
  });

  test('start-up: an empty peer still counts as an answer', async () => {
    const net = new SimNetwork();
    net.addNode('a', []);
    const d = net.addNode('d', ['a']);
    await d.replicator.start();
    await net.run(50);
    assert.equal(d.replicator.ready, true);
    await stopAll(net);
  });

  test('a partition heals by digests: writes on both sides converge, cancels stay dead', async () => {
    const net = await threeNodes();
    const a = net.node('a').registry;
    const c = net.node('c').registry;
    a.register(registration({ instanceId: 'doomed' }));
    await net.run(50);
    net.cut('a', 'c');
    net.cut('b', 'c');
    a.register(registration({ instanceId: 'from-a' }));
    c.register(registration({ instanceId: 'from-c' }));
    c.updateMetadata('billing', 'doomed', { touched: 'yes' }, []);
    net.clock.advance(1);
    a.cancel('billing', 'doomed');
    // Longer than a task lives (30 s): only digests can repair this.
    await net.run(40_000, 100);
    assert.notDeepEqual(contents(a), contents(c));
    net.healAll();
    await net.run(12_000, 50);
    const expected = contents(a);
    for (const n of ['b', 'c']) assert.deepEqual(contents(net.node(n).registry), expected, n);
    // The cancel at A came after C's metadata change: the newest write wins everywhere.
    assert.deepEqual(
      a.snapshot().instances.map((v) => v.record.instanceId),
      ['from-a', 'from-c'],
    );
    await stopAll(net);
  });
});

test('property: random writes, delays, drops, duplicates, replays, cuts and heals converge without resurrection or loss', async () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('register' as const), node: fc.integer({ min: 0, max: 2 }), id: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ kind: fc.constant('cancel' as const), node: fc.integer({ min: 0, max: 2 }), id: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ kind: fc.constant('meta' as const), node: fc.integer({ min: 0, max: 2 }), id: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ kind: fc.constant('cut' as const), a: fc.integer({ min: 0, max: 2 }), b: fc.integer({ min: 0, max: 2 }) }),
    fc.record({ kind: fc.constant('heal' as const) }),
    fc.record({ kind: fc.constant('wait' as const), ms: fc.oneof(fc.integer({ min: 1, max: 400 }), fc.constant(31_000)) }),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 40 }), fc.integer(), async (ops, maxLatency, seed) => {
      const net = await threeNodes();
      const random = mulberry32(seed);
      net.latency = () => Math.floor(random() * maxLatency);
      net.random = random;
      net.faults = { drop: 0.05, duplicate: 0.1, replay: 0.05 };
      const names = ['a', 'b', 'c'];
      // The model: writes are versioned by time, so the last write per instance decides
      // whether it must exist (a cancel or change only counts where the node held the record).
      const live = new Map<string, boolean>();
      for (const o of ops) {
        if (o.kind === 'cut') {
          if (o.a !== o.b) net.cut(names[o.a]!, names[o.b]!);
        } else if (o.kind === 'heal') net.healAll();
        else if (o.kind === 'wait') await net.run(o.ms, 10);
        else {
          const registry = net.node(names[o.node]!).registry;
          const id = `i-${o.id}`;
          // Client writes carry the client's own clock, always moving forward.
          net.clock.advance(1);
          if (o.kind === 'register') {
            registry.register(registration({ instanceId: id, lastDirtyTimestamp: net.clock.wallNow(), durationSecs: 3600 }));
            live.set(id, true);
          } else if (registry.record('billing', id)) {
            if (o.kind === 'cancel') {
              registry.cancel('billing', id);
              live.set(id, false);
            } else {
              registry.updateMetadata('billing', id, { n: String(net.clock.wallNow()) }, []);
              live.set(id, true);
            }
          }
        }
      }
      net.healAll();
      // Quiescence: anti-entropy runs every 10 s; hour-long leases outlast the heartbeat-free run.
      await net.run(25_000, 100);
      const expected = contents(net.node('a').registry);
      for (const n of ['b', 'c']) assert.deepEqual(contents(net.node(n).registry), expected);
      const present = new Set(
        net
          .node('a')
          .registry.snapshot()
          .instances.map((v) => v.record.instanceId),
      );
      for (const [id, alive] of live) assert.equal(present.has(id), alive, `${id} should be ${alive ? 'live' : 'gone'}`);
      await stopAll(net);
    }),
    { numRuns: 100 },
  );
});

/** A small seeded PRNG, so a failing property run replays exactly. */
function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
