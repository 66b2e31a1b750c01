import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { FakeClock } from '../../src/core/clock.js';
import { createMetrics } from '../../src/grpc/metrics.js';
import { addSecurityMetrics } from '../../src/grpc/security-metrics.js';
import { ConnectionGate, DEFAULT_CONNECTION_LIMITS } from '../../src/grpc/connections.js';
import { RegistryServiceClient } from '../../src/gen/roster/v1/registry_service.js';
import { StreamReader, registration, silentLogger, startHarness, WAIT_MS, type Harness } from '../grpc/helpers.js';
import { waitFor } from '../client/harness.js';

/** A raw TCP connection to the port; resolves once connected. */
function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

const closed = (socket: Socket): Promise<void> => (socket.destroyed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve())));

function getInstance(client: RegistryServiceClient): Promise<grpc.status> {
  return new Promise((resolve) => {
    client.getInstance({ app: 'a', instanceId: 'i' }, new grpc.Metadata(), { deadline: Date.now() + WAIT_MS }, (err) => resolve(err ? err.code : grpc.status.OK));
  });
}

async function metricsOf(h: Harness): Promise<string> {
  const metrics = createMetrics(h.registry);
  addSecurityMetrics(metrics, () => h.server.connectionStats());
  return metrics.render();
}

describe('connection caps at accept', () => {
  test('connections from one address beyond the cap are closed at once and counted', async () => {
    const h = await startHarness({ connectionLimits: { maxConnectionsPerAddress: 2 } });
    const sockets: Socket[] = [];
    try {
      // The harness client has not connected yet: these are the only connections.
      for (let i = 0; i < 3; i++) sockets.push(await open(h.server.port));
      await closed(sockets[2]!);
      await waitFor('two connections counted', () => h.server.connectionStats().connections === 2);
      assert.equal(sockets[0]!.destroyed, false);
      assert.deepEqual(h.server.connectionStats().refusedConnections, { total: 0, perAddress: 1 });
      assert.match(await metricsOf(h), /roster_grpc_connections_refused_total\{cap="per_address"\} 1/);
      sockets[0]!.destroy();
      await waitFor('a slot freed', () => h.server.connectionStats().connections === 1);
      sockets.push(await open(h.server.port));
      await waitFor('the new connection admitted', () => h.server.connectionStats().connections === 2);
      assert.equal(h.server.connectionStats().refusedConnections.perAddress, 1);
    } finally {
      for (const s of sockets) s.destroy();
      await h.close();
    }
  });

  test('connections beyond the total cap are closed and counted', async () => {
    const h = await startHarness({ connectionLimits: { maxConnections: 1 } });
    const sockets: Socket[] = [];
    try {
      sockets.push(await open(h.server.port), await open(h.server.port));
      await closed(sockets[1]!);
      assert.deepEqual(h.server.connectionStats().refusedConnections, { total: 1, perAddress: 0 });
      assert.match(await metricsOf(h), /roster_grpc_connections\s+1/);
    } finally {
      for (const s of sockets) s.destroy();
      await h.close();
    }
  });
});

describe('call caps', () => {
  test('calls beyond the total cap are answered RESOURCE_EXHAUSTED; a finished stream frees its slot', async () => {
    const h = await startHarness({ connectionLimits: { maxCalls: 2 } });
    try {
      const watches = [0, 1].map(() => new StreamReader(h.client.watch({ app: '', vip: '', nodeId: '' })));
      for (const w of watches) assert.equal((await w.next()).progress, true);
      assert.equal(await getInstance(h.client), grpc.status.RESOURCE_EXHAUSTED);
      assert.equal(h.server.connectionStats().refusedCalls.total, 1);
      watches[0]!.stream.cancel();
      await waitFor('the slot released', () => h.server.connectionStats().calls === 1);
      assert.equal(await getInstance(h.client), grpc.status.NOT_FOUND);
      watches[1]!.stream.cancel();
      await waitFor('every slot released', () => h.server.connectionStats().calls === 0);
      assert.match(await metricsOf(h), /roster_grpc_calls_refused_total\{cap="total"\} 1/);
    } finally {
      await h.close();
    }
  });

  test('the per-connection cap counts calls on each connection separately', async () => {
    const gate = new ConnectionGate({ ...DEFAULT_CONNECTION_LIMITS, maxCallsPerConnection: 2, idleMs: 0 }, new FakeClock(), silentLogger());
    // Server-side sockets (two ports on the client side), as the gate sees them.
    const accepted: Socket[] = [];
    const server = createServer((s) => accepted.push(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const clients = [await open(port), await open(port)];
    await waitFor('both accepted', () => accepted.length === 2);
    const [a, b] = accepted as [Socket, Socket];
    try {
      assert.ok(gate.admit(a) && gate.admit(b));
      const on = (s: Socket) => ({ remoteAddress: s.remoteAddress, remotePort: s.remotePort });
      const first = gate.admitCall(on(a));
      const second = gate.admitCall(on(a));
      assert.ok(first.ok && second.ok);
      const third = gate.admitCall(on(a));
      assert.equal(third.ok, false);
      assert.match(third.ok ? '' : third.message, /on this connection \(limit 2\)/);
      assert.equal(gate.admitCall(on(b)).ok, true, 'another connection has its own budget');
      first.release();
      first.release();
      assert.equal(gate.admitCall(on(a)).ok, true, 'a released call frees one slot, once');
      assert.equal(gate.admitCall(on(a)).ok, false);
      assert.deepEqual(gate.stats().refusedCalls, { total: 0, perConnection: 2 });
    } finally {
      for (const s of [...clients, ...accepted]) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('idle connections', () => {
  test('a connection with no call for idleMs is closed (GOAWAY) and counted; one holding a Watch stream is not', async () => {
    // grpc-js times idle connections on the real clock, so this waits for real: 300 ms.
    const h = await startHarness({ connectionLimits: { idleMs: 300 } });
    // Its own subchannel pool, so it does not share the harness client's connection.
    const watcher = new RegistryServiceClient(h.address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    try {
      const watch = new StreamReader(watcher.watch({ app: '', vip: '', nodeId: '' }));
      await watch.next();
      assert.equal(await getInstance(h.client), grpc.status.NOT_FOUND);
      await waitFor('the idle connection closed', () => h.server.connectionStats().connections === 1);
      assert.equal(h.server.connectionStats().idleClosed, 1);
      assert.match(await metricsOf(h), /roster_grpc_connections_idle_closed_total 1/);
      // The Watch stream outlived the idle limit on its own connection and still delivers.
      h.registry.register(registration());
      assert.equal((await watch.next()).changes[0]?.instance?.instanceId, 'i-1');
      // The client redials when it next needs the node; the GOAWAY spared it an error.
      assert.equal(await getInstance(h.client), grpc.status.NOT_FOUND);
      watch.stream.cancel();
    } finally {
      watcher.close();
      await h.close();
    }
  });
});
