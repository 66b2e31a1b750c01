import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { DiscoveryCache, RosterClient, type CacheChange } from '../../src/client/index.js';
import { Instance, InstanceStatus } from '../../src/gen/roster/v1/instance.js';
import { waitFor } from './harness.js';
import { ServeProcess } from './processes.js';

const RENEW_SECS = 2;
/** Retries and reconnects stay well inside one renewal interval. */
const FAST = { backoff: { initialMs: 20, maxMs: 200 }, timeoutMs: 2_000 } as const;

/** A record as consumers see it: without the node-local lease times and update time. */
function content(i: Instance): string {
  const { lease: _lease, lastUpdatedTimestamp: _updated, ...rest } = Instance.toJSON(i) as Record<string, unknown>;
  return JSON.stringify(rest, Object.keys(rest).sort());
}

function view(instances: readonly Instance[]): string[] {
  return instances.map(content).sort();
}

/** Waits until the cache shows exactly what `server` lists. */
async function cacheMatches(cache: DiscoveryCache, server: RosterClient, what: string): Promise<void> {
  let last: { cache: string[]; server: string[] } | undefined;
  try {
    await waitFor(
      what,
      async () => {
        last = { cache: view(cache.all()), server: view((await server.listApplications()).instances) };
        return last.cache.length === last.server.length && last.cache.every((c, i) => c === last!.server[i]);
      },
      10_000,
    );
  } catch (err) {
    assert.deepEqual(last?.cache, last?.server, `${what}: ${String(err)}`);
  }
}

/** A small deterministic generator, so a failing sequence can be replayed. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Registers, re-statuses, edits metadata and cancels instances of `shop` at random. */
async function randomChanges(client: RosterClient, seed: number, count: number): Promise<void> {
  const random = seeded(seed);
  const statuses = [InstanceStatus.INSTANCE_STATUS_UP, InstanceStatus.INSTANCE_STATUS_DOWN, InstanceStatus.INSTANCE_STATUS_STARTING];
  for (let n = 0; n < count; n++) {
    const id = `r-${Math.floor(random() * 6)}`;
    const roll = random();
    try {
      if (roll < 0.5) {
        await client.register({
          app: 'shop',
          instanceId: id,
          ipAddr: '127.0.0.1',
          port: { number: 9000 + n, enabled: true },
          status: statuses[Math.floor(random() * statuses.length)]!,
          lastDirtyTimestamp: Date.now() + n,
          lease: { renewalIntervalSecs: 30, durationSecs: 90 },
        });
      } else if (roll < 0.7) await client.updateMetadata('shop', id, { step: String(n) });
      else if (roll < 0.85) await client.setStatusOverride('shop', id, InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE);
      else await client.cancel('shop', id);
    } catch (err) {
      if ((err as { code?: number }).code !== 5) throw err; // NOT_FOUND: the instance was not there
    }
  }
}

describe('client against real servers', { timeout: 240_000 }, () => {
  const processes: ServeProcess[] = [];
  const closers: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const close of closers.reverse()) await close();
    for (const p of processes) await p.kill();
  });

  test('registration and watch survive a restart of the only server', async () => {
    const node = await ServeProcess.create('solo');
    processes.push(node);
    node.start();
    await node.ready();
    const client = new RosterClient(node.address, FAST);
    const direct = new RosterClient(node.address);
    const cache = new DiscoveryCache(client, { backoff: FAST.backoff });
    closers.push(
      () => direct.close(),
      () => client.close(),
      () => cache.close(),
    );

    const agent = await client.keepRegistered({
      app: 'orders',
      instanceId: 'o-1',
      ipAddr: '127.0.0.1',
      port: { number: 7001, enabled: true },
      lease: { renewalIntervalSecs: RENEW_SECS, durationSecs: 3 * RENEW_SECS },
    });
    await cache.start();
    await randomChanges(direct, 1, 20);
    await cacheMatches(cache, direct, 'the cache after random changes');
    const firstNode = cache.nodeId;

    await node.kill();
    node.start();
    await node.ready();
    const readyAt = Date.now();
    await waitFor(
      'orders/o-1 registered again',
      async () => {
        const res = await direct.getApplication('orders').catch(() => undefined);
        return res?.instances.some((i) => i.instanceId === 'o-1');
      },
      5_000,
    );
    const relistedMs = Date.now() - readyAt;
    assert.ok(relistedMs <= RENEW_SECS * 1000, `listed again ${relistedMs} ms after the restart (one heartbeat interval is ${RENEW_SECS * 1000} ms)`);
    // The listing can see the record before the agent has read its Register response.
    await waitFor('the heartbeat got NOT_FOUND and the agent registered again', () => agent.registrations >= 2, 5_000);

    // The restarted node has a new history: the cache resyncs and drops what died with it.
    await cacheMatches(cache, direct, 'the cache after the restart');
    assert.notEqual(cache.nodeId, firstNode);
    await randomChanges(direct, 2, 20);
    await cacheMatches(cache, direct, 'the cache after changes on the restarted node');

    const resyncs = cache.resyncs;
    cache.resync();
    await waitFor('a forced resync', () => cache.resyncs > resyncs);
    await cacheMatches(cache, direct, 'the cache after a forced resync');
  });

  test('registration, heartbeats and watch fail over to another node', async () => {
    const nodes = await Promise.all(['a', 'b', 'c'].map((name) => ServeProcess.create(name, ['--anti-entropy-secs', '2'])));
    processes.push(...nodes);
    const peers = nodes.map((n) => n.address);
    for (const n of nodes) n.start(peers);
    await Promise.all(nodes.map((n) => n.ready()));
    const [a, b] = nodes as [ServeProcess, ServeProcess, ServeProcess];
    const failovers: string[] = [];
    const client = new RosterClient(peers, { ...FAST, onFailover: (from, to) => failovers.push(`${from}->${to}`) });
    const viaB = new RosterClient(b.address);
    const cache = new DiscoveryCache(client, { backoff: FAST.backoff });
    const changes: CacheChange[] = [];
    cache.on('change', (c) => changes.push(c));
    closers.push(
      () => viaB.close(),
      () => client.close(),
      () => cache.close(),
    );

    for (const id of ['p-1', 'p-2']) {
      await client.keepRegistered({
        app: 'payments',
        instanceId: id,
        ipAddr: '127.0.0.1',
        port: { number: 8001, enabled: true },
        lease: { renewalIntervalSecs: RENEW_SECS, durationSecs: 3 * RENEW_SECS },
      });
    }
    await cache.start();
    assert.equal(client.server, a.address, 'the client sticks to the first server');
    assert.ok(cache.nodeId.startsWith('a@'), `watching node a (${cache.nodeId})`);
    await randomChanges(viaB, 3, 30);
    await cacheMatches(cache, viaB, 'the cache (fed by a) after random changes made at b');

    const renewedAt = async (): Promise<number> => (await viaB.getInstance('payments', 'p-1')).instance?.lease?.lastRenewalTimestamp ?? 0;
    await a.kill();
    const killedAt = Date.now();
    await waitFor('a heartbeat renewed at b after the failover', async () => (await renewedAt()) > killedAt, 5_000);
    const renewedMs = Date.now() - killedAt;
    assert.ok(renewedMs <= RENEW_SECS * 1000 + 1000, `renewed on another node ${renewedMs} ms after the kill`);
    assert.notEqual(client.server, a.address);
    assert.ok(failovers.length >= 1 && failovers[0]!.startsWith(a.address), failovers.join(', '));

    // The cache follows the new node's history, and matches it through more changes.
    await waitFor('the cache to follow another node', () => !cache.nodeId.startsWith('a@'));
    await randomChanges(viaB, 4, 30);
    await cacheMatches(cache, viaB, 'the cache after the failover');
    const listed = await viaB.getApplication('payments');
    assert.deepEqual(listed.instances.map((i) => i.instanceId).sort(), ['p-1', 'p-2']);

    // A registration made after the failover, and close() cancelling everything it registered.
    await client.keepRegistered({ app: 'payments', instanceId: 'p-3', ipAddr: '127.0.0.1', port: { number: 8003, enabled: true } });
    await waitFor('p-3 in the cache', () => cache.instances('payments').length === 3);
    assert.ok(changes.some((c) => c.type === 'added' && c.instance.instanceId === 'p-3'));
    await cache.close();
    await client.close();
    const remaining = await viaB.getApplication('payments');
    assert.deepEqual(remaining.instances, [], 'close() cancelled p-1, p-2 and p-3');
  });
});
