import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { registerRosterResolver, RosterClient, type RosterResolverHandle } from '../../src/client/index.js';
import { InstanceStatus } from '../../src/gen/roster/v1/instance.js';
import type { RosterNode } from '../../src/cli/node.js';
import { startTestNode, waitFor } from './harness.js';

/** A one-method service whose answer names the server that handled the call. */
const ECHO = {
  whoAmI: {
    path: '/test.Echo/WhoAmI',
    requestStream: false,
    responseStream: false,
    requestSerialize: (v: Buffer) => v,
    requestDeserialize: (v: Buffer) => v,
    responseSerialize: (v: Buffer) => v,
    responseDeserialize: (v: Buffer) => v,
  },
} satisfies grpc.ServiceDefinition;
const EchoClient = grpc.makeGenericClientConstructor(ECHO, 'Echo');

interface EchoServer {
  readonly name: string;
  readonly port: number;
  readonly server: grpc.Server;
}

async function startEcho(name: string): Promise<EchoServer> {
  const server = new grpc.Server();
  server.addService(ECHO, { whoAmI: (_call: unknown, done: grpc.sendUnaryData<Buffer>) => done(null, Buffer.from(name)) });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { name, port, server };
}

let node: RosterNode;
let registry: RosterClient;
let resolver: RosterResolverHandle;
const echoes: EchoServer[] = [];

before(async () => {
  node = await startTestNode();
  registry = new RosterClient(`127.0.0.1:${node.grpcPort}`);
  resolver = registerRosterResolver({ servers: [`127.0.0.1:${node.grpcPort}`] });
  for (const name of ['e-1', 'e-2', 'e-3', 'e-4']) echoes.push(await startEcho(name));
});

after(async () => {
  await resolver.close();
  await registry.close();
  for (const e of echoes) e.server.forceShutdown();
  await node.stop();
});

function register(e: EchoServer): Promise<unknown> {
  return registry.register({
    app: 'echo',
    instanceId: e.name,
    ipAddr: '127.0.0.1',
    port: { number: e.port, enabled: true },
    vipAddress: 'echo.vip,other.vip',
    lastDirtyTimestamp: Date.now(),
  });
}

function call(client: grpc.Client): Promise<string> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      ECHO.whoAmI.path,
      (v: Buffer) => v,
      (v: Buffer) => v,
      Buffer.alloc(0),
      { deadline: Date.now() + 2_000 },
      (err, res) => (err ? reject(err) : resolve(res!.toString())),
    ),
  );
}

async function spread(client: grpc.Client, calls: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (let i = 0; i < calls; i++) {
    const who = await call(client);
    counts.set(who, (counts.get(who) ?? 0) + 1);
  }
  return counts;
}

/** Calls until `name` has not answered `quiet` calls in a row; returns how long that took after `since`. */
async function stopsUsing(client: grpc.Client, name: string, since: number): Promise<number> {
  let lastSeen = since;
  let quiet = 0;
  for (let i = 0; i < 2_000 && quiet < 30; i++) {
    if ((await call(client)) === name) {
      lastSeen = performance.now();
      quiet = 0;
    } else quiet++;
  }
  assert.equal(quiet, 30, `${name} still answers`);
  return lastSeen - since;
}

test('a channel to roster:///echo spreads calls over the UP instances and follows changes', { timeout: 30_000 }, async () => {
  const [e1, e2, e3, e4] = echoes as [EchoServer, EchoServer, EchoServer, EchoServer];
  for (const e of [e1, e2, e3]) await register(e);
  const client = new EchoClient('roster:///echo', grpc.credentials.createInsecure());
  try {
    const counts = await spread(client, 60);
    assert.deepEqual([...counts.keys()].sort(), ['e-1', 'e-2', 'e-3']);
    for (const [name, n] of counts) assert.ok(n >= 15, `round_robin gives each a share: ${name} got ${n} of 60`);

    let since = performance.now();
    await registry.cancel('echo', 'e-1');
    const afterCancelMs = await stopsUsing(client, 'e-1', since);
    assert.ok(afterCancelMs < 1_000, `e-1 last answered ${Math.round(afterCancelMs)} ms after its cancel`);

    since = performance.now();
    await registry.setStatusOverride('echo', 'e-2', InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE);
    const afterOosMs = await stopsUsing(client, 'e-2', since);
    assert.ok(afterOosMs < 1_000, `e-2 last answered ${Math.round(afterOosMs)} ms after OUT_OF_SERVICE`);
    assert.deepEqual([...(await spread(client, 10)).keys()], ['e-3']);

    await register(e4);
    await waitFor('e-4 to take calls', async () => (await spread(client, 4)).has('e-4'));
    assert.deepEqual([...(await spread(client, 20)).keys()].sort(), ['e-3', 'e-4']);

    // With no UP instance the channel has no address: calls fail UNAVAILABLE rather than reach a stale one.
    await registry.cancel('echo', 'e-3');
    await registry.cancel('echo', 'e-4');
    await waitFor('calls to fail', async () => {
      try {
        await call(client);
        return false;
      } catch (err) {
        return (err as grpc.ServiceError).code === grpc.status.UNAVAILABLE;
      }
    });
  } finally {
    client.close();
    await registry.clearStatusOverride('echo', 'e-2').catch(() => undefined);
    await registry.cancel('echo', 'e-2').catch(() => undefined);
  }
});

test('roster:///vip/NAME resolves the instances serving a VIP', { timeout: 30_000 }, async () => {
  const [e1, e2] = echoes as [EchoServer, EchoServer];
  await register(e1);
  await registry.register({ app: 'other', instanceId: e2.name, ipAddr: '127.0.0.1', port: { number: e2.port, enabled: true }, vipAddress: 'other.vip' });
  const client = new EchoClient('roster:///vip/other.vip', grpc.credentials.createInsecure());
  try {
    await waitFor('both VIP members to answer', async () => (await spread(client, 6)).size === 2);
    assert.deepEqual([...(await spread(client, 10)).keys()].sort(), ['e-1', 'e-2']);
  } finally {
    client.close();
    await registry.cancel('echo', 'e-1');
    await registry.cancel('other', 'e-2');
  }
});

test('a malformed roster target fails the channel, naming the expected form', () => {
  assert.throws(() => new EchoClient('roster:///bad name!', grpc.credentials.createInsecure()), /roster:\/\/\/APP/);
});
