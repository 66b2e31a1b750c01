import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Eureka } from 'eureka-js-client';
import type { RosterNode } from '../../src/cli/node.js';
import { startTestNode, waitFor } from '../client/harness.js';
import { eurekaInstance, http, JSON_HEADERS } from './harness.js';
import { freePort } from '../support/ports.js';

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** Instance ids of an app as one node's Eureka face lists them (none when the app is unknown). */
async function idsAt(node: RosterNode, app: string): Promise<string[]> {
  const res = await http(node.httpPort, 'GET', `/eureka/apps/${app}`, { headers: { accept: 'application/json' } });
  if (res.status === 404) return [];
  assert.equal(res.status, 200, res.text);
  const doc = JSON.parse(res.text) as { application: { instance: { instanceId: string }[] } };
  return doc.application.instance.map((i) => i.instanceId).sort();
}

const TOKEN = 'eureka-cluster-test-token';
const nodes: RosterNode[] = [];

before(async () => {
  const ports = await Promise.all([0, 1, 2].map(() => freePort()));
  const peers = ports.map((p) => `127.0.0.1:${p}`).join(',');
  for (const [i, port] of ports.entries()) {
    nodes.push(await startTestNode({ port, nodeId: `eureka-${i}`, peers, clusterToken: TOKEN, startupWaitSecs: 5, antiEntropySecs: 2 }));
  }
  // Reads answer 403 until a node has synchronised with a peer.
  for (const node of nodes) await waitFor('ready', async () => (await http(node.httpPort, 'GET', '/readyz')).status === 200, 10_000);
});

after(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
});

test('three nodes: a Eureka client registered at A is visible through the Eureka face of C, and its cancel too', async () => {
  const [a, b, c] = nodes as [RosterNode, RosterNode, RosterNode];
  const client = new Eureka({
    instance: {
      app: 'clustered',
      hostName: 'c-1.local',
      ipAddr: '127.0.0.1',
      port: { $: 4000, '@enabled': true },
      vipAddress: 'clustered',
      dataCenterInfo: { '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo', name: 'MyOwn' },
    },
    eureka: { host: '127.0.0.1', port: a.httpPort, servicePath: '/eureka/apps/', heartbeatInterval: 200, registryFetchInterval: 200, maxRetries: 0 },
    logger: quiet,
  });
  await new Promise<void>((resolve, reject) => client.start((err) => (err ? reject(err) : resolve())));
  try {
    await waitFor('C to list the instance', async () => (await idsAt(c, 'CLUSTERED')).includes('c-1.local'));
    assert.deepEqual(await idsAt(b, 'CLUSTERED'), ['c-1.local']);

    // A status override made through C's face reaches A.
    const override = await http(c.httpPort, 'PUT', '/eureka/v2/apps/CLUSTERED/c-1.local/status?value=OUT_OF_SERVICE');
    assert.equal(override.status, 200);
    await waitFor('A to see the override', () => a.registry.get('clustered', 'c-1.local').record.status === 'OUT_OF_SERVICE');

    // A register posted at B reaches C as well.
    const posted = await http(b.httpPort, 'POST', '/eureka/apps/CLUSTERED', { headers: JSON_HEADERS, body: JSON.stringify({ instance: eurekaInstance({ app: 'CLUSTERED', hostName: 'c-2.local' }) }) });
    assert.equal(posted.status, 204);
    await waitFor('C to list both', async () => (await idsAt(c, 'CLUSTERED')).length === 2);
  } finally {
    await new Promise<void>((resolve, reject) => client.stop((err) => (err ? reject(err) : resolve())));
  }
  await waitFor('C to drop the cancelled instance', async () => !(await idsAt(c, 'CLUSTERED')).includes('c-1.local'));
  assert.equal(c.registry.revision > 0, true);
});
