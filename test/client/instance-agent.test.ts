import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { FakeClock } from '../../src/core/clock.js';
import { InstanceAgent, isServiceError, RosterClient } from '../../src/client/index.js';
import type { RosterNode } from '../../src/cli/node.js';
import { InstanceStatus } from '../../src/gen/roster/v1/instance.js';
import { captureLogger, startTestNode, TcpProxy, waitFor } from './harness.js';

const RENEW_MS = 30_000;

let node: RosterNode;
let client: RosterClient;

before(async () => {
  node = await startTestNode();
  client = new RosterClient(`127.0.0.1:${node.grpcPort}`);
});

after(async () => {
  client.close();
  await node.stop();
});

function agentFor(instanceId: string, clock: FakeClock, via: RosterClient = client, logger = captureLogger().logger): InstanceAgent {
  return new InstanceAgent({
    client: via,
    clock,
    logger,
    backoff: { initialMs: 100, maxMs: 100 },
    instance: {
      app: 'agents',
      instanceId,
      hostName: 'h',
      ipAddr: '10.0.0.9',
      port: { number: 80, enabled: true },
      status: InstanceStatus.INSTANCE_STATUS_UP,
      lease: { renewalIntervalSecs: RENEW_MS / 1000, durationSecs: 90 },
    },
  });
}

async function stored(instanceId: string) {
  const { instance } = await client.getInstance('agents', instanceId);
  assert.ok(instance);
  return instance;
}

test('heartbeats every renewal interval, re-registers fresh after the override is cleared, cancels on stop', async () => {
  // The fake wall starts at real time so the agent's versions compare sensibly with the server's.
  const clock = new FakeClock(Date.now());
  const agent = agentFor('a-1', clock);
  const registered = await agent.start();
  assert.equal(registered.status, InstanceStatus.INSTANCE_STATUS_UP);
  const firstDirty = agent.lastDirtyTimestamp;
  assert.equal((await stored('a-1')).lastDirtyTimestamp, firstDirty);

  clock.advance(RENEW_MS - 1);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(agent.renewals, 0, 'no heartbeat before the interval');
  clock.advance(1);
  await waitFor('the first heartbeat', () => agent.renewals === 1);

  await client.setStatusOverride('agents', 'a-1', InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE);
  clock.advance(RENEW_MS);
  await waitFor('the second heartbeat', () => agent.renewals === 2);
  assert.equal(agent.status, InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE, 'the heartbeat reports the override');

  await client.clearStatusOverride('agents', 'a-1');
  assert.equal((await stored('a-1')).status, InstanceStatus.INSTANCE_STATUS_UNKNOWN);
  clock.advance(RENEW_MS);
  await waitFor('re-registration after NOT_FOUND', () => agent.registrations === 2);
  assert.equal(agent.renewals, 2, 'the NOT_FOUND heartbeat did not count as a renewal');
  const again = await stored('a-1');
  assert.equal(again.status, InstanceStatus.INSTANCE_STATUS_UP);
  assert.ok(agent.lastDirtyTimestamp > firstDirty, 'a fresh dirty timestamp');
  assert.equal(again.lastDirtyTimestamp, agent.lastDirtyTimestamp);

  clock.advance(RENEW_MS);
  await waitFor('heartbeats resume', () => agent.renewals === 3);

  await agent.stop();
  assert.equal(clock.pendingTimers, 0, 'no timer left behind');
  await assert.rejects(client.getInstance('agents', 'a-1'), (err: unknown) => isServiceError(err) && err.code === status.NOT_FOUND);
  await agent.stop();
});

test('an instance removed behind its back comes back at the next heartbeat', async () => {
  const clock = new FakeClock(Date.now());
  const agent = agentFor('a-2', clock);
  await agent.start();
  await client.cancel('agents', 'a-2');
  clock.advance(RENEW_MS);
  await waitFor('re-registration', () => agent.registrations === 2);
  assert.equal((await stored('a-2')).status, InstanceStatus.INSTANCE_STATUS_UP);
  await agent.stop();
});

test('setStatus sends a new version of the record', async () => {
  const clock = new FakeClock(Date.now());
  const agent = agentFor('a-3', clock);
  await agent.start();
  const before = agent.lastDirtyTimestamp;
  const down = await agent.setStatus(InstanceStatus.INSTANCE_STATUS_DOWN);
  assert.equal(down.status, InstanceStatus.INSTANCE_STATUS_DOWN);
  assert.ok(agent.lastDirtyTimestamp > before);
  assert.equal((await stored('a-3')).status, InstanceStatus.INSTANCE_STATUS_DOWN);
  await agent.stop();
  await assert.rejects(agent.setStatus(InstanceStatus.INSTANCE_STATUS_UP), /stopped/);
});

test('transient failures are retried with backoff; bad input fails start()', async () => {
  const proxy = await TcpProxy.start(node.grpcPort);
  const viaProxy = new RosterClient(proxy.address, {
    channelOptions: { 'grpc.initial_reconnect_backoff_ms': 50, 'grpc.max_reconnect_backoff_ms': 100 },
  });
  const { logger, lines } = captureLogger();
  const clock = new FakeClock(Date.now());
  const agent = agentFor('a-4', clock, viaProxy, logger);
  try {
    await agent.start();
    proxy.cut(true);
    clock.advance(RENEW_MS);
    await waitFor('a failed heartbeat', () => lines.some((l) => l.msg === 'renewal failed; retrying'));
    assert.equal(clock.pendingTimers, 1, 'a retry is scheduled');
    proxy.accept();
    await waitFor(
      'a heartbeat after the outage',
      () => {
        clock.advance(100);
        return agent.renewals >= 1;
      },
      10_000,
    );
    await agent.stop();
  } finally {
    viaProxy.close();
    await proxy.close();
  }

  const bad = new InstanceAgent({ client, clock: new FakeClock(), instance: { app: 'bad app!', instanceId: 'x' } });
  await assert.rejects(bad.start(), (err: unknown) => isServiceError(err) && err.code === status.INVALID_ARGUMENT);
  await bad.stop();
});
