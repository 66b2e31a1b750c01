import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RosterClient } from '../../src/client/index.js';
import { InstanceStatus } from '../../src/gen/roster/v1/instance.js';
import { bootstrapConfig } from '../../src/xds/bootstrap.js';
import { startEcho, type EchoServer } from './echo.js';
import { startCluster, XdsClientProcess, type RosterProcess } from './processes.js';

/** The bar: a cancelled or OUT_OF_SERVICE instance gets no call a second later. */
const STOP_WITHIN_MS = 1_000;

describe('a @grpc/grpc-js-xds client on xds:///echo against two roster serve processes', () => {
  let nodes: RosterProcess[] = [];
  let echoes: EchoServer[] = [];
  let clients: RosterClient[] = [];
  let xds: XdsClientProcess | undefined;

  before(async () => {
    nodes = await startCluster(['xa', 'xb']);
    clients = nodes.map((n) => new RosterClient(n.address));
    echoes = await Promise.all(['e1', 'e2', 'e3', 'e4', 'e5'].map(startEcho));
  });

  after(async () => {
    await xds?.stop();
    for (const c of clients) c.close();
    for (const n of nodes) await n.kill('SIGTERM');
    for (const e of echoes) await e.close();
  });

  const register = (at: RosterClient, name: string): Promise<unknown> => {
    const echo = echoes.find((e) => e.name === name)!;
    return at.register({
      app: 'echo',
      instanceId: name,
      hostName: 'localhost',
      ipAddr: '127.0.0.1',
      port: { number: echo.port, enabled: true },
      status: InstanceStatus.INSTANCE_STATUS_UP,
      zone: 'z1',
    });
  };

  /** Asserts no call reached `server` more than STOP_WITHIN_MS after `since`, once calls go on past it. */
  const assertStopped = async (server: string, since: number): Promise<void> => {
    const client = xds!;
    await client.waitForCall(`calls after ${STOP_WITHIN_MS} ms`, since + STOP_WITHIN_MS + 200, (c) => c.server !== undefined);
    const late = client.after(since + STOP_WITHIN_MS).filter((c) => c.server === server);
    assert.deepEqual(late, [], `${server} still got calls more than ${STOP_WITHIN_MS} ms after it left`);
    const last = client.calls.filter((c) => c.server === server).at(-1);
    if (last) process.stderr.write(`# ${server}: last call ${last.at - since} ms after it left\n`);
  };

  test('spreads calls over three instances, drops a cancelled and an OUT_OF_SERVICE one within a second, picks up a new one', async () => {
    const [a, b] = clients as [RosterClient, RosterClient];
    for (const name of ['e1', 'e2', 'e3']) await register(a, name);
    // ipv4: lists several nodes as one target (grpc-js and C-core); the client uses the first
    // that answers and moves to the next when it dies.
    const bootstrap = bootstrapConfig({ servers: [`ipv4:${nodes[0]!.address},${nodes[1]!.address}`], zone: 'z1', nodeId: 'grpc-js-test' });
    xds = new XdsClientProcess('xds:///echo', bootstrap);

    const start = Date.now();
    await xds.waitForCall('calls to every instance', start, () => ['e1', 'e2', 'e3'].every((s) => xds!.calls.some((c) => c.server === s)), 30_000);
    const spreadFrom = Date.now();
    await xds.waitForCall('60 more calls', spreadFrom, () => xds!.after(spreadFrom).length >= 60);
    const counts = new Map<string, number>();
    for (const c of xds.after(spreadFrom)) counts.set(c.server ?? 'error', (counts.get(c.server ?? 'error') ?? 0) + 1);
    assert.deepEqual([...counts.keys()].sort(), ['e1', 'e2', 'e3'], 'round robin over the three, no errors');
    for (const n of counts.values()) assert.ok(n >= 10, `calls are spread: ${JSON.stringify([...counts])}`);

    // Cancel at the node the client talks to.
    const cancelled = Date.now();
    await a.cancel('echo', 'e2');
    await assertStopped('e2', cancelled);

    // OUT_OF_SERVICE at the other node: replication brings it to the client's node.
    const outOfService = Date.now();
    await b.setStatusOverride('echo', 'e3', InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE);
    await assertStopped('e3', outOfService);

    const added = Date.now();
    await register(a, 'e4');
    const first = await xds.waitForCall('a call to the new instance', added, (c) => c.server === 'e4', 5_000);
    process.stderr.write(`# e4: first call ${first.at - added} ms after it registered\n`);
    assert.ok(first.at - added < STOP_WITHIN_MS, `the new instance got its first call after ${first.at - added} ms`);
    assert.deepEqual(
      xds.after(added).filter((c) => c.error),
      [],
      'no call failed',
    );
  });

  test('keeps calling when its Roster node is killed, and follows the other node', async () => {
    const client = xds!;
    const b = clients[1]!;
    const killed = Date.now();
    await nodes[0]!.kill('SIGKILL');
    await client.waitForCall('calls after the kill', killed + 500, (c) => c.server !== undefined);
    assert.deepEqual(
      client.after(killed).filter((c) => c.error),
      [],
      'the last endpoints keep serving',
    );

    // Changes made at the surviving node reach the client through its new ADS stream.
    const added = Date.now();
    await register(b, 'e5');
    await client.waitForCall('a call to an instance registered at the other node', added, (c) => c.server === 'e5', 20_000);
    const cancelled = Date.now();
    await b.cancel('echo', 'e1');
    await assertStopped('e1', cancelled);
    assert.deepEqual(
      client.after(killed).filter((c) => c.error),
      [],
      'no call failed across the fail-over',
    );
    const metrics = await nodes[1]!.metrics();
    assert.match(metrics, /^roster_xds_streams 1$/m, 'the client now streams from the surviving node');
    assert.match(metrics, /^roster_xds_acks_total\{type="eds"\} [1-9]/m);
  });
});
