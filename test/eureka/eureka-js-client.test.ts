import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { Eureka, type EurekaConfig } from 'eureka-js-client';
import type { RosterNode } from '../../src/cli/node.js';
import { RosterClient } from '../../src/client/index.js';
import { ChangeType, InstanceStatus } from '../../src/gen/roster/v1/instance.js';
import { startTestNode, waitFor } from '../client/harness.js';

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** eureka-js-client as an application would configure it, polling fast so the test is short. */
function eurekaClient(httpPort: number, overrides: Partial<EurekaConfig> = {}): Eureka {
  return new Eureka({
    instance: {
      app: 'jsapp',
      hostName: 'js-1.local',
      ipAddr: '127.0.0.1',
      port: { $: 3000, '@enabled': true },
      vipAddress: 'jsapp.vip',
      statusPageUrl: 'http://js-1.local:3000/info',
      metadata: { lang: 'node' },
      dataCenterInfo: { '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo', name: 'MyOwn' },
    },
    // The client's default path, /eureka/v2/apps/.
    eureka: { host: '127.0.0.1', port: httpPort, heartbeatInterval: 100, registryFetchInterval: 100, maxRetries: 0, preferSameZone: false },
    shouldUseDelta: true,
    logger: quiet,
    ...overrides,
  });
}

const call = <T>(fn: (done: (err?: Error | null) => void) => void): Promise<T | undefined> => new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve(undefined))));

const grpcInstance = (id: string) => ({
  app: 'grpcapp',
  instanceId: id,
  hostName: `${id}.local`,
  ipAddr: '10.0.0.5',
  port: { number: 7000 + Number(id.slice(-1)), enabled: true },
  vipAddress: 'grpcapp.vip',
  lastDirtyTimestamp: Date.now(),
});

let node: RosterNode;
let roster: RosterClient;

before(async () => {
  node = await startTestNode();
  roster = new RosterClient(`127.0.0.1:${node.grpcPort}`);
});

after(async () => {
  roster.close();
  await node.stop();
});

async function requestsTo(route: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.httpPort}/metrics`)).text();
  let total = 0;
  for (const m of text.matchAll(new RegExp(`^roster_eureka_requests_total\\{route="${route}",code="200"\\} (\\d+)$`, 'gm'))) total += Number(m[1]);
  return total;
}

test('eureka-js-client registers, heartbeats, reads the registry and deltas, follows gRPC writes, and deregisters; a gRPC Watch sees it', async () => {
  // A gRPC consumer watching the app the Eureka client registers.
  const abort = new AbortController();
  const watched: { type: ChangeType; id: string }[] = [];
  const watching = (async () => {
    for await (const msg of roster.watch({ app: 'jsapp' }, { signal: abort.signal })) {
      for (const c of msg.changes) watched.push({ type: c.type, id: c.instance?.instanceId ?? '' });
    }
  })();

  await roster.register(grpcInstance('grpc-1'));
  const client = eurekaClient(node.httpPort);
  let heartbeats = 0;
  client.on('heartbeat', () => heartbeats++);
  try {
    await call((done) => client.start(done));

    // Registered through the Eureka face, visible over gRPC with what the client sent.
    const { instance } = await roster.getInstance('jsapp', 'js-1.local');
    assert.equal(instance?.hostName, 'js-1.local');
    assert.deepEqual(instance?.port, { number: 3000, enabled: true });
    assert.equal(instance?.status, InstanceStatus.INSTANCE_STATUS_UP);
    assert.deepEqual(instance?.metadata, { lang: 'node' });
    await waitFor('the Watch to see the registration', () => watched.some((c) => c.type === ChangeType.CHANGE_TYPE_ADDED && c.id === 'js-1.local'));

    // The first fetch was a full one: the instance registered over gRPC before the client started.
    await waitFor('the full registry', () => client.getInstancesByAppId('GRPCAPP').length === 1);
    assert.equal(client.getInstancesByVipAddress('grpcapp.vip')[0]?.hostName, 'grpc-1.local');

    // Heartbeats renew the lease.
    const renewedAt = (await roster.getInstance('jsapp', 'js-1.local')).instance?.lease?.lastRenewalTimestamp ?? 0;
    await waitFor('two heartbeats', () => heartbeats >= 2);
    await waitFor('a later renewal', async () => ((await roster.getInstance('jsapp', 'js-1.local')).instance?.lease?.lastRenewalTimestamp ?? 0) > renewedAt);

    // Later gRPC writes reach the client through deltas.
    const deltasBefore = await requestsTo('delta');
    await roster.register(grpcInstance('grpc-2'));
    await waitFor('the delta with grpc-2', () => client.getInstancesByAppId('GRPCAPP').some((i) => i.instanceId === 'grpc-2'));
    await roster.setStatusOverride('grpcapp', 'grpc-1', InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE);
    await waitFor('the status change', () => client.getInstancesByAppId('GRPCAPP').some((i) => i.instanceId === 'grpc-1' && i.status === 'OUT_OF_SERVICE'));
    assert.ok((await requestsTo('delta')) > deltasBefore, 'the changes came through apps/delta');
    assert.ok(
      client.getInstancesByAppId('JSAPP').some((i) => i.hostName === 'js-1.local'),
      'the client sees itself',
    );
  } finally {
    await call((done) => client.stop(done));
  }
  await assert.rejects(roster.getInstance('jsapp', 'js-1.local'), (err: { code?: number }) => err.code === status.NOT_FOUND);
  await waitFor('the Watch to see the cancel', () => watched.some((c) => c.type === ChangeType.CHANGE_TYPE_DELETED && c.id === 'js-1.local'));
  abort.abort();
  await watching;
});

test('eureka-js-client registers again after its heartbeat gets 404 (override cleared over gRPC)', async () => {
  const client = eurekaClient(node.httpPort, { shouldUseDelta: false });
  let registrations = 0;
  client.on('registered', () => registrations++);
  try {
    await call((done) => client.start(done));
    await roster.setStatusOverride('jsapp', 'js-1.local', InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE);
    await roster.clearStatusOverride('jsapp', 'js-1.local');
    assert.equal((await roster.getInstance('jsapp', 'js-1.local')).instance?.status, InstanceStatus.INSTANCE_STATUS_UNKNOWN);
    await waitFor('a re-registration', () => registrations >= 2);
    await waitFor('UP again', async () => (await roster.getInstance('jsapp', 'js-1.local')).instance?.status === InstanceStatus.INSTANCE_STATUS_UP);
  } finally {
    await call((done) => client.stop(done));
  }
});
