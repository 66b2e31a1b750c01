/**
 * The deployment suite: what a client and a sidecar see when things move.
 *  1. failover: three `roster serve` processes; a client (servers listed in order) keeps an
 *     instance registered and a discovery cache watching. The node it uses is killed (-9); the
 *     time until the client has renewed on another node over its Heartbeats stream and its
 *     cache follows that node's history (resynced, watching) — then the node is restarted.
 *  2. resolver update: a grpc-js channel on roster:///echo (round_robin) over three echo
 *     servers under steady calls; one instance is cancelled: the time from the cancel to the
 *     last call that reached it. Then it registers again and rejoins.
 *  3. start-up and memory of `roster serve` run through tsx (TypeScript sources) and from the
 *     compiled output (`node dist/cli/main.js`): spawn → /readyz 200, and RSS once idle.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { DiscoveryCache, registerRosterResolver, RosterClient } from '../src/client/index.js';
import { median, ServerProcess } from './harness.js';
import type { Budget, ClusterSuite, Measurement } from './scenarios.js';
import { freePort } from '../test/support/ports.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const TOKEN = 'bench-deployment-token';

/** The p-th percentile (nearest rank) of `values`. */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 5 ms until it holds; throws after `timeoutMs`. */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await pause(5);
  }
}

class Node {
  child: ChildProcess | undefined;
  constructor(
    readonly name: string,
    readonly port: number,
    readonly httpPort: number,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  start(peers: readonly string[]): void {
    this.child = spawn(
      process.execPath,
      // biome-ignore format: a flag and its value per line
      [
        '--import', 'tsx', 'src/cli/main.ts', 'serve',
        '--port', String(this.port),
        '--http-port', String(this.httpPort),
        '--node-id', this.name,
        '--peers', peers.join(','),
        '--log-level', 'warn',
        '--startup-wait-secs', '5',
      ],
      { cwd: ROOT, env: { ...process.env, ROSTER_CLUSTER_TOKEN: TOKEN }, stdio: ['ignore', 'ignore', 'inherit'] },
    );
  }

  async ready(): Promise<void> {
    await until(`${this.name} ready`, async () => {
      try {
        return (await fetch(`http://127.0.0.1:${this.httpPort}/readyz`)).ok;
      } catch {
        return false;
      }
    });
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}

async function measureFailover(trials: number): Promise<number[]> {
  const nodes = await Promise.all(['fa', 'fb', 'fc'].map(async (name) => new Node(name, await freePort(), await freePort())));
  const peers = nodes.map((n) => n.address);
  for (const n of nodes) n.start(peers);
  const durations: number[] = [];
  try {
    await Promise.all(nodes.map((n) => n.ready()));
    for (let trial = 0; trial < trials; trial++) {
      // The first server listed is the one the client sticks to, and the one killed.
      const victim = nodes[trial % nodes.length]!;
      const order = [victim, ...nodes.filter((n) => n !== victim)].map((n) => n.address);
      const client = new RosterClient(order, { backoff: { initialMs: 20, maxMs: 500 }, timeoutMs: 2_000 });
      const cache = new DiscoveryCache(client, { backoff: { initialMs: 20, maxMs: 500 } });
      try {
        await client.keepRegistered({ app: 'failover', instanceId: `t-${trial}`, ipAddr: '127.0.0.1', port: { number: 9000, enabled: true }, lease: { renewalIntervalSecs: 1, durationSecs: 5 } });
        await cache.start();
        const watchedBefore = cache.nodeId;
        await victim.kill();
        const killedAt = performance.now();
        // A renewal answered OK on the shared stream, from a node other than the victim, and the cache following that node.
        await until('a renewal and a watch on another node', async () => {
          if (client.server === victim.address || cache.nodeId === watchedBefore || !cache.nodeId) return false;
          const result = await client.heartbeats.heartbeat('failover', `t-${trial}`);
          return result.code === grpc.status.OK;
        });
        durations.push(performance.now() - killedAt);
      } finally {
        await cache.close();
        await client.close();
      }
      victim.start(peers);
      await victim.ready();
    }
  } finally {
    for (const n of nodes) await n.kill();
  }
  return durations;
}

const ECHO = {
  whoAmI: {
    path: '/bench.Echo/WhoAmI',
    requestStream: false,
    responseStream: false,
    requestSerialize: (v: Buffer) => v,
    requestDeserialize: (v: Buffer) => v,
    responseSerialize: (v: Buffer) => v,
    responseDeserialize: (v: Buffer) => v,
  },
} satisfies grpc.ServiceDefinition;

async function measureResolver(trials: number): Promise<number[]> {
  const server = await ServerProcess.start({});
  const registry = new RosterClient(server.address);
  const resolver = registerRosterResolver({ servers: [server.address] });
  const echoes: { name: string; port: number; server: grpc.Server }[] = [];
  for (const name of ['e-0', 'e-1', 'e-2']) {
    const s = new grpc.Server();
    s.addService(ECHO, { whoAmI: (_call: unknown, done: grpc.sendUnaryData<Buffer>) => done(null, Buffer.from(name)) });
    const port = await new Promise<number>((resolve, reject) => s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    echoes.push({ name, port, server: s });
  }
  const register = (e: { name: string; port: number }) =>
    registry.register({ app: 'echo', instanceId: e.name, ipAddr: '127.0.0.1', port: { number: e.port, enabled: true }, lastDirtyTimestamp: Date.now() });
  for (const e of echoes) await register(e);
  const channel = new grpc.Client('roster:///echo', grpc.credentials.createInsecure());
  const lastAnswer = new Map<string, number>();
  let stop = false;
  const caller = async (): Promise<void> => {
    while (!stop) {
      const who = await new Promise<string | undefined>((resolve) =>
        channel.makeUnaryRequest(
          ECHO.whoAmI.path,
          (v: Buffer) => v,
          (v: Buffer) => v,
          Buffer.alloc(0),
          { deadline: Date.now() + 2_000 },
          (err, res) => resolve(err ? undefined : res!.toString()),
        ),
      );
      if (who !== undefined) lastAnswer.set(who, performance.now());
    }
  };
  const callers = Array.from({ length: 4 }, caller);
  const durations: number[] = [];
  try {
    await until('every echo server to answer', () => lastAnswer.size === echoes.length);
    for (let trial = 0; trial < trials; trial++) {
      const e = echoes[trial % echoes.length]!;
      const cancelledAt = performance.now();
      await registry.cancel('echo', e.name);
      // No answer from it for 1 s (many calls): it is out of rotation; its last answer ends the measurement.
      await until(`${e.name} out of rotation`, () => performance.now() - Math.max(lastAnswer.get(e.name) ?? 0, cancelledAt) > 1_000, 30_000);
      durations.push(Math.max(0, (lastAnswer.get(e.name) ?? cancelledAt) - cancelledAt));
      await register(e);
      const rejoin = performance.now();
      await until(`${e.name} back in rotation`, () => (lastAnswer.get(e.name) ?? 0) > rejoin, 30_000);
    }
  } finally {
    stop = true;
    await Promise.all(callers);
    channel.close();
    await resolver.close();
    await registry.close();
    for (const e of echoes) e.server.forceShutdown();
    await server.stop();
  }
  return durations;
}

/** Spawn → /readyz 200, and the RSS (MiB) 1 s after, of one `roster serve` started by `args`. */
async function startOnce(args: readonly string[]): Promise<{ readyMs: number; rssMiB: number }> {
  const httpPort = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, [...args, 'serve', '--port', '0', '--http-port', String(httpPort), '--log-level', 'warn'], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await until('serve ready', async () => {
      try {
        return (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).ok;
      } catch {
        return false;
      }
    });
    const readyMs = performance.now() - started;
    await pause(1_000);
    const vmRss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1];
    return { readyMs, rssMiB: Number(vmRss) / 1024 };
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}

async function measureStartup(runs: number): Promise<Record<string, number>> {
  execFileSync(process.execPath, ['scripts/build.js'], { cwd: ROOT, stdio: 'inherit' });
  const tsx: { readyMs: number; rssMiB: number }[] = [];
  const compiled: { readyMs: number; rssMiB: number }[] = [];
  // Interleaved, so both see the same machine load.
  for (let i = 0; i < runs; i++) {
    tsx.push(await startOnce(['--import', 'tsx', 'src/cli/main.ts']));
    compiled.push(await startOnce(['dist/cli/main.js']));
  }
  return {
    tsxReadyMs: median(tsx.map((r) => r.readyMs)),
    compiledReadyMs: median(compiled.map((r) => r.readyMs)),
    tsxRssMiB: median(tsx.map((r) => r.rssMiB)),
    compiledRssMiB: median(compiled.map((r) => r.rssMiB)),
  };
}

const round = (n: number): number => Math.round(n * 10) / 10;

export const DEPLOYMENT_SUITE: ClusterSuite = {
  name: 'deployment',
  scenarios: [
    { id: 'failover-p50', title: 'p. failover: node killed → client renewing and watching on another node, p50', unit: 'ms' },
    { id: 'failover-p99', title: 'q. failover, p99', unit: 'ms' },
    { id: 'resolver-p50', title: 'r. roster:/// resolver: cancel → last call to that instance, p50', unit: 'ms' },
    { id: 'resolver-p99', title: 's. resolver update, p99', unit: 'ms' },
    { id: 'startup-tsx', title: 't. roster serve start-up (spawn → /readyz), tsx sources', unit: 'ms' },
    { id: 'startup-compiled', title: 'u. roster serve start-up, compiled dist/', unit: 'ms' },
    { id: 'rss-tsx', title: 'v. roster serve idle RSS, tsx sources', unit: 'MiB' },
    { id: 'rss-compiled', title: 'w. roster serve idle RSS, compiled dist/', unit: 'MiB' },
  ],
  async run({ budget }: { readonly budget: Budget }): Promise<ReadonlyMap<string, Measurement>> {
    const quick = budget.rounds < 5;
    const failover = await measureFailover(quick ? 3 : 12);
    const resolver = await measureResolver(quick ? 5 : 20);
    const startup = await measureStartup(quick ? 2 : 5);
    const samples = (values: number[]) => ({ samples: values.map(round) });
    return new Map<string, Measurement>([
      ['failover-p50', { value: percentile(failover, 50), details: samples(failover) }],
      ['failover-p99', { value: percentile(failover, 99), details: { n: failover.length } }],
      ['resolver-p50', { value: percentile(resolver, 50), details: samples(resolver) }],
      ['resolver-p99', { value: percentile(resolver, 99), details: { n: resolver.length } }],
      ['startup-tsx', { value: startup.tsxReadyMs! }],
      ['startup-compiled', { value: startup.compiledReadyMs! }],
      ['rss-tsx', { value: startup.tsxRssMiB! }],
      ['rss-compiled', { value: startup.compiledRssMiB! }],
    ]);
  },
};
