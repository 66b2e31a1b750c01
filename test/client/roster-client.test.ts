import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { FakeClock } from '../../src/core/clock.js';
import { isServiceError, RosterClient } from '../../src/client/index.js';
import type { RosterNode } from '../../src/cli/node.js';
import { ChangeType, InstanceStatus, type DeepPartial, type Instance } from '../../src/gen/roster/v1/instance.js';
import type { WatchResponse } from '../../src/gen/roster/v1/registry_service.js';
import { startTestNode, TcpProxy, waitFor } from './harness.js';

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

function instance(app: string, instanceId: string, extra: DeepPartial<Instance> = {}): DeepPartial<Instance> {
  return {
    app,
    instanceId,
    hostName: `${instanceId}.local`,
    ipAddr: '10.0.0.1',
    port: { number: 8080, enabled: true },
    status: InstanceStatus.INSTANCE_STATUS_UP,
    ...extra,
  };
}

async function rejectsWith(promise: Promise<unknown>, code: status, details?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isServiceError(err), `expected a ServiceError, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${status[code]}, got ${status[err.code]}: ${err.details}`);
    if (details) assert.match(err.details, details);
    return true;
  });
}

test('unary calls round-trip the generated messages', async () => {
  const reg = await client.register(instance('Billing', 'b-1', { vipAddress: 'billing-vip,shared', metadata: { v: '1' } }));
  assert.equal(reg.instance?.app, 'billing', 'app names are normalised to lower case');
  assert.ok(reg.revision > 0);

  const got = await client.getInstance('BILLING', 'b-1');
  assert.equal(got.instance?.hostName, 'b-1.local');
  assert.equal(got.instance?.status, InstanceStatus.INSTANCE_STATUS_UP);

  assert.equal((await client.heartbeat('billing', 'b-1')).status, InstanceStatus.INSTANCE_STATUS_UP);

  const meta = await client.updateMetadata('billing', 'b-1', { zone: 'a' }, ['v']);
  assert.deepEqual(meta.instance?.metadata, { zone: 'a' });

  const app = await client.getApplication('billing');
  assert.deepEqual(
    app.instances.map((i) => i.instanceId),
    ['b-1'],
  );
  assert.deepEqual(
    (await client.listByVip('shared')).instances.map((i) => i.instanceId),
    ['b-1'],
  );
  assert.equal((await client.listByVip('shared', true)).instances.length, 0);

  const over = await client.setStatusOverride('billing', 'b-1', InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE);
  assert.equal(over.instance?.status, InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE);
  const cleared = await client.clearStatusOverride('billing', 'b-1');
  assert.equal(cleared.instance?.overriddenStatus, InstanceStatus.INSTANCE_STATUS_UNSPECIFIED);

  const delta = await client.getDelta(reg.revision - 1);
  assert.ok(delta.changes.length >= 4);
  assert.equal(delta.changes[0]?.type, ChangeType.CHANGE_TYPE_ADDED);

  const cancelled = await client.cancel('billing', 'b-1');
  assert.ok(cancelled.revision > reg.revision);
  await rejectsWith(client.getInstance('billing', 'b-1'), status.NOT_FOUND);
});

test('errors surface as ServiceErrors with code and details', async () => {
  await rejectsWith(client.heartbeat('nobody', 'n-1'), status.NOT_FOUND);
  await rejectsWith(client.register(instance('bad app!', 'x')), status.INVALID_ARGUMENT, /app/);
  await rejectsWith(client.getInstance('x', 'y', { deadline: Date.now() - 1 }), status.DEADLINE_EXCEEDED);
  const aborted = new AbortController();
  aborted.abort();
  await rejectsWith(client.getInstance('x', 'y', { signal: aborted.signal }), status.CANCELLED);
  const abort = new AbortController();
  const pending = client.listApplications({ signal: abort.signal });
  abort.abort();
  await rejectsWith(pending, status.CANCELLED);
});

test('listApplications collects every chunk of the snapshot', async () => {
  for (let i = 0; i < 7; i++) await client.register(instance('chunky', `c-${i}`));
  const snapshot = await client.listApplications({ chunkSize: 2 });
  const chunky = snapshot.instances.filter((i) => i.app === 'chunky');
  assert.deepEqual(
    chunky.map((i) => i.instanceId),
    ['c-0', 'c-1', 'c-2', 'c-3', 'c-4', 'c-5', 'c-6'],
  );
  assert.equal(snapshot.revision, node.registry.revision);
  assert.match(snapshot.reconcileHash, /UP_\d+_/);
  for (let i = 0; i < 7; i++) await client.cancel('chunky', `c-${i}`);
});

test('watch delivers changes from a revision and resumes after the connection drops', async () => {
  const proxy = await TcpProxy.start(node.grpcPort);
  const viaProxy = new RosterClient(proxy.address);
  const abort = new AbortController();
  const clock = new FakeClock();
  const retries: status[] = [];
  try {
    const from = (await client.listApplications()).revision;
    const watch = viaProxy.watch({ app: 'watched', sinceRevision: from }, { signal: abort.signal, clock, onRetry: (err) => retries.push(err.code), backoff: { initialMs: 10, maxMs: 10 } });
    const seen: WatchResponse[] = [];
    const reader = (async () => {
      for await (const message of watch) seen.push(message);
    })();
    const changesSeen = (): { id: string; revision: number }[] => seen.flatMap((m) => m.changes.map((c) => ({ id: c.instance?.instanceId ?? '', revision: c.revision })));

    await client.register(instance('watched', 'w-1'));
    await client.register(instance('other', 'o-1'));
    await waitFor('w-1 on the watch', () => changesSeen().length === 1);

    proxy.cut(true);
    await waitFor('the watch to fail and back off', () => clock.pendingTimers === 1);
    await client.register(instance('watched', 'w-2'));
    await client.cancel('watched', 'w-1');
    proxy.accept();
    // Each advance fires one reconnect; grpc-js may need a few while its channel reconnects.
    await waitFor(
      'the changes made while disconnected',
      () => {
        clock.advance(10);
        return changesSeen().length === 3;
      },
      10_000,
    );

    assert.deepEqual(
      changesSeen().map((c) => c.id),
      ['w-1', 'w-2', 'w-1'],
    );
    const revisions = changesSeen().map((c) => c.revision);
    assert.deepEqual(
      revisions,
      [...revisions].sort((a, b) => a - b),
      'in revision order',
    );
    assert.equal(new Set(revisions).size, 3, 'no change delivered twice');
    assert.ok(retries.length >= 1 && retries.every((code) => code !== status.OK));

    abort.abort();
    await reader;
    assert.equal(clock.pendingTimers, 0);
    await client.cancel('watched', 'w-2');
    await client.cancel('other', 'o-1');
  } finally {
    abort.abort();
    viaProxy.close();
    await proxy.close();
  }
});

test('watch surfaces resync_required and ends; permanent errors are thrown', async () => {
  const small = await startTestNode({ changeLogSize: 2 });
  const c = new RosterClient(`127.0.0.1:${small.grpcPort}`);
  try {
    for (let i = 0; i < 5; i++) await c.register(instance('churn', `ch-${i}`));
    const messages: WatchResponse[] = [];
    for await (const m of c.watch({ sinceRevision: 1 }, { maxRetries: 0 })) messages.push(m);
    assert.equal(messages.length, 1);
    assert.equal(messages[0]?.resyncRequired, true);

    await assert.rejects(
      (async () => {
        for await (const m of c.watch({ app: 'bad app!' }, { maxRetries: 0 })) assert.fail(`unexpected ${JSON.stringify(m)}`);
      })(),
      (err: unknown) => isServiceError(err) && err.code === status.INVALID_ARGUMENT,
    );
  } finally {
    c.close();
    await small.stop();
  }
});
