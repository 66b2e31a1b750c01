import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { RosterClient } from '../../src/client/index.js';
import { Instance } from '../../src/gen/roster/v1/instance.js';
import * as pb from '../../src/gen/roster/v1/replication_service.js';
import { waitFor } from '../client/harness.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { stopProcess, untilReady } from '../support/nodes.js';
import { freePort } from '../support/ports.js';

const TOKEN = 'e2e-cluster-token';

/** One `roster serve` process on fixed loopback ports, restartable on the same ports. */
class Proc {
  child: ChildProcess | undefined;
  constructor(
    readonly name: string,
    readonly port: number,
    readonly httpPort: number,
    public peers: string[],
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  start(): void {
    this.child = spawn(
      process.execPath,
      // biome-ignore format: a flag and its value per line
      [
        '--import', 'tsx', 'src/cli/main.ts', 'serve',
        '--port', String(this.port),
        '--http-port', String(this.httpPort),
        '--node-id', this.name,
        '--peers', this.peers.join(','),
        '--log-level', 'warn',
        '--anti-entropy-secs', '2',
        '--startup-wait-secs', '10',
        '--shutdown-grace-ms', '20000',
      ],
      { env: { ...process.env, ROSTER_CLUSTER_TOKEN: TOKEN }, stdio: ['ignore', 'ignore', 'inherit'] },
    );
  }

  ready(): Promise<void> {
    return untilReady(this.name, this.httpPort, 20_000);
  }

  /** Signals the process and resolves with its exit code once it has exited. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    return stopProcess(this.child, signal);
  }
}

/** A node's records, without what is node-local (lease times, last update). */
async function contents(client: RosterClient): Promise<string> {
  const { instances } = await client.listApplications();
  return JSON.stringify(instances.map((i) => ({ ...i, lease: { ...i.lease, registrationTimestamp: 0, lastRenewalTimestamp: 0, serviceUpTimestamp: 0 }, lastUpdatedTimestamp: 0 })));
}

const instance = (id: string) => ({
  app: 'orders',
  instanceId: id,
  hostName: `${id}.local`,
  ipAddr: '10.1.0.1',
  port: { number: 8080, enabled: true },
  metadata: { zone: 'a' },
});

describe('three roster serve processes on loopback', { timeout: 120_000 }, () => {
  let a: Proc, b: Proc, c: Proc;
  let aToC: TcpProxy, cToA: TcpProxy;
  const clients = new Map<string, RosterClient>();
  const client = (p: Proc): RosterClient => clients.get(p.name)!;

  before(async () => {
    const [pa, ha, pb_, hb, pc, hc] = await Promise.all(Array.from({ length: 6 }, freePort));
    // The A↔C link goes through proxies so the test can cut it while A–B and B–C stay up.
    aToC = await TcpProxy.start(pc!);
    cToA = await TcpProxy.start(pa!);
    a = new Proc('a', pa!, ha!, [`127.0.0.1:${pb_}`, aToC.address]);
    b = new Proc('b', pb_!, hb!, [`127.0.0.1:${pa}`, `127.0.0.1:${pc}`]);
    c = new Proc('c', pc!, hc!, [cToA.address, `127.0.0.1:${pb_}`]);
    for (const p of [a, b, c]) p.start();
    await Promise.all([a, b, c].map((p) => p.ready()));
    for (const p of [a, b, c]) clients.set(p.name, new RosterClient(p.address));
  });

  after(async () => {
    for (const cl of clients.values()) cl.close();
    await Promise.all([a, b, c].map((p) => p?.kill()));
    await aToC?.close();
    await cToA?.close();
  });

  test('register at A → a Watch on C sees the event', async () => {
    const abort = new AbortController();
    const seen = (async () => {
      for await (const message of client(c).watch({ app: 'orders' }, { signal: abort.signal })) {
        const change = message.changes.find((ch) => ch.instance?.instanceId === 'w-1');
        if (change) return change;
      }
      return undefined;
    })();
    await new Promise((r) => setTimeout(r, 200));
    await client(a).register(instance('w-1'));
    const change = await Promise.race([seen, new Promise((_, reject) => setTimeout(() => reject(new Error('no event in 5 s')), 5_000))]);
    abort.abort();
    assert.ok(change);
  });

  test('kill -9 B, write at A, restart B → B catches up; a watcher of B is told to resync', async () => {
    // A watcher of B's old incarnation: after the restart its cursor means nothing there.
    const abort = new AbortController();
    const watcher = new RosterClient(b.address);
    const messages = watcher.watch({}, { signal: abort.signal, backoff: { initialMs: 100, maxMs: 500 } })[Symbol.asyncIterator]();
    assert.equal((await messages.next()).value?.progress, true);
    await b.kill('SIGKILL');
    await client(a).register(instance('while-b-down'));
    b.start();
    await b.ready();
    clients.get('b')!.close();
    clients.set('b', new RosterClient(b.address));
    await waitFor(
      'B has the write made while it was down',
      async () =>
        (await client(b)
          .getInstance('orders', 'while-b-down')
          .catch(() => undefined)) !== undefined,
      10_000,
    );
    await waitFor('B identical to A', async () => (await contents(client(b))) === (await contents(client(a))), 5_000);
    const next = await Promise.race([messages.next(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no resync in 15 s')), 15_000))]);
    assert.equal(next.value?.resyncRequired, true);
    abort.abort();
    watcher.close();
  });

  test('cut A↔C while both take writes, heal → all three identical within 5 s', async () => {
    aToC.cut(true);
    cToA.cut(true);
    await client(a).register(instance('from-a'));
    await client(c).register(instance('from-c'));
    await client(c).cancel('orders', 'w-1');
    // The cut took: A's stream to C is down (digests through B may still carry some writes over).
    await waitFor('A sees C disconnected', async () => {
      const report = (await (await fetch(`http://127.0.0.1:${a.httpPort}/peers`)).json()) as { peers: { peer: string; connected: boolean }[] };
      return report.peers.find((p) => p.peer === aToC.address)?.connected === false;
    });
    await new Promise((r) => setTimeout(r, 1_000));
    aToC.accept();
    cToA.accept();
    const healed = Date.now();
    await waitFor(
      'identical registries',
      async () => {
        const [x, y, z] = await Promise.all([a, b, c].map((p) => contents(client(p))));
        return x === y && y === z;
      },
      5_000,
    );
    const ids = JSON.parse(await contents(client(a))).map((i: { instanceId: string }) => i.instanceId);
    assert.deepEqual(ids, ['from-a', 'from-c', 'while-b-down']);
    assert.ok(Date.now() - healed <= 5_000);
  });

  test('a peer with the wrong token gets UNAUTHENTICATED and changes nothing', async () => {
    const before = await contents(client(a));
    const raw = new pb.ReplicationServiceClient(a.address, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set('authorization', 'Bearer wrong');
    const code = await new Promise<grpc.status>((resolve) => {
      const call = raw.replicate(metadata);
      call.on('error', (err: grpc.ServiceError) => resolve(err.code));
      call.on('data', () => resolve(grpc.status.OK));
      call.write({
        batchId: 1,
        tasks: [{ action: pb.ReplicationAction.REPLICATION_ACTION_CANCEL, instance: Instance.fromPartial({ ...instance('from-a'), lastDirtyTimestamp: Date.now() * 2 }), originTimestamp: 0 }],
      });
    });
    raw.close();
    assert.equal(code, grpc.status.UNAUTHENTICATED);
    assert.equal(await contents(client(a)), before);
  });

  test('SIGTERM: a node with connected peers shuts down gracefully and exits 0, without waiting out its grace period', async () => {
    const started = Date.now();
    // The grace period is 20 s: only ending every stream, peers' included, lets it stop this early.
    assert.equal(await c.kill('SIGTERM'), 0);
    assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
  });
});
