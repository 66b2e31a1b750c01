import assert from 'node:assert/strict';
import type http2 from 'node:http2';
import { after, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as rs from '../../src/gen/roster/v1/registry_service.js';
import * as rpb from '../../src/gen/roster/v1/replication_service.js';
import { recordToProto } from '../../src/grpc/convert.js';
import { killAll, start, type Running } from '../cli/process.js';
import { registration } from '../core/fixtures.js';
import { newClient, WAIT_MS } from './helpers.js';
import { connect, grpcFrame, openCall, rawCall } from './raw-http2.js';

/**
 * A real `roster serve` under a hard heap limit survives, all at once: peers that send
 * Replicate batches and never read their results (each batch of tiny heartbeat tasks is
 * answered with 1,000 full records, a ~30× amplification), Watch streams that never read while
 * every instance changes, and the largest reads (ListApplications, GetApplication, ListByVip
 * over every instance) from clients that never read them. Afterwards it still answers health
 * and reads. Bounded: every wait is, and the test (~10 s on a quiet machine, ~25 s at a load
 * average of 15) fails after 90 s.
 */
const HEAP_MB = 256;
const INSTANCES = 20_000;
const BATCH = 1_000;
/** ~1 KiB of metadata per instance: 20 MiB of records in all. */
const METADATA = { blob: 'm'.repeat(1_000) };
const HOSTILE_PEERS = 4;
const HOSTILE_BATCHES = 300;
const PAUSED_WATCHERS = 300;
const PAUSED_READS = 10;

const REPLICATE = rpb.ReplicationServiceService.replicate.path;

const registerTask = (i: number, version: number): rpb.ReplicationTask => ({
  action: rpb.ReplicationAction.REPLICATION_ACTION_REGISTER,
  instance: recordToProto({
    ...registration({ app: 'big', instanceId: `i-${i}`, vipAddress: 'big.vip', metadata: METADATA, lastDirtyTimestamp: 1_000 + version }),
    overriddenStatus: undefined,
    lastUpdatedTimestamp: 0,
  }),
  originTimestamp: 0,
});

/** Tiny on the wire; each is answered CONFLICT with the node's full (newer) record. */
const staleHeartbeat = (i: number): rpb.ReplicationTask => ({
  action: rpb.ReplicationAction.REPLICATION_ACTION_HEARTBEAT,
  instance: rpb.ReplicationTask.fromPartial({ instance: { app: 'big', instanceId: `i-${i % INSTANCES}`, lastDirtyTimestamp: 1 } }).instance!,
  originTimestamp: 0,
});

/** Sends every batch on one Replicate stream of a well-behaved peer, one at a time, reading each answer. */
async function replicate(client: rpb.ReplicationServiceClient, batches: rpb.ReplicationTask[][]): Promise<void> {
  const call = client.replicate({ deadline: Date.now() + 60_000 });
  try {
    for (const [n, tasks] of batches.entries()) {
      const answered = new Promise<rpb.ReplicateResponse>((resolve, reject) => {
        call.once('data', resolve);
        call.once('error', reject);
      });
      call.write({ batchId: n + 1, tasks });
      const response = await answered;
      assert.ok(
        response.results.every((r) => r.code === rpb.TaskResultCode.TASK_RESULT_CODE_OK),
        `batch ${n + 1} was not applied`,
      );
    }
  } finally {
    call.end();
  }
}

const batchesOf = (version: number): rpb.ReplicationTask[][] => Array.from({ length: INSTANCES / BATCH }, (_, b) => Array.from({ length: BATCH }, (_, i) => registerTask(b * BATCH + i, version)));

let node: Running | undefined;
const sessions: http2.ClientHttp2Session[] = [];
after(() => {
  for (const s of sessions) s.destroy();
  killAll();
});

test(`a node with --max-old-space-size=${HEAP_MB} survives non-reading peers, watchers and readers, and still answers`, { timeout: 90_000 }, async (t) => {
  node = start(
    ['serve', '--port', '0', '--http-port', '0', '--node-id', 'heap-test', '--log-format', 'json', '--log-level', 'info'],
    [process.execPath, `--max-old-space-size=${HEAP_MB}`, '--import', 'tsx', 'src/cli/main.ts'],
  );
  const started = JSON.parse(await node.line((l) => l.includes('"roster started"'))) as { grpcPort: number; httpPort: number };
  const port = started.grpcPort;
  const address = `127.0.0.1:${port}`;
  const peer = new rpb.ReplicationServiceClient(address, grpc.credentials.createInsecure(), { 'grpc.per_rpc_retry_buffer_size': 0 });
  const client = newClient(address);
  try {
    const began = Date.now();
    await replicate(peer, batchesOf(0));
    t.diagnostic(`filled ${INSTANCES} instances in ${Date.now() - began} ms`);

    const session = (): http2.ClientHttp2Session => {
      const s = connect(port, { initialWindowSize: 65_535 });
      s.on('error', () => undefined);
      sessions.push(s);
      return s;
    };
    /** A call that sends its request and then never reads. */
    const paused = (s: http2.ClientHttp2Session, path: string, frames: Buffer[]): http2.ClientHttp2Stream => {
      const stream = openCall(s, path);
      stream.pause();
      stream.on('error', () => undefined);
      for (const f of frames) stream.write(f);
      return stream;
    };

    // Peers that send batches and never read their results.
    const flood = Array.from({ length: HOSTILE_BATCHES }, (_, n) =>
      grpcFrame(rpb.ReplicateRequest.encode({ batchId: n + 1, tasks: Array.from({ length: BATCH }, (_, i) => staleHeartbeat(n * BATCH + i)) }).finish()),
    );
    for (let p = 0; p < HOSTILE_PEERS; p++) paused(session(), REPLICATE, flood);

    // Watchers that never read, and the largest reads from clients that never read.
    const watchers = session();
    for (let w = 0; w < PAUSED_WATCHERS; w++) paused(watchers, rs.RegistryServiceService.watch.path, [grpcFrame(rs.WatchRequest.encode({ app: '', vip: '', nodeId: '' }).finish())]).end();
    const readers = session();
    for (let r = 0; r < PAUSED_READS; r++) {
      paused(readers, rs.RegistryServiceService.listApplications.path, [grpcFrame(rs.ListApplicationsRequest.encode({ chunkSize: 0 }).finish())]).end();
      paused(readers, rs.RegistryServiceService.getApplication.path, [grpcFrame(rs.GetApplicationRequest.encode({ app: 'big', pageSize: 0, pageToken: '' }).finish())]).end();
      paused(readers, rs.RegistryServiceService.listByVip.path, [grpcFrame(rs.ListByVipRequest.encode({ vip: 'big.vip', secure: false, pageSize: 0, pageToken: '' }).finish())]).end();
    }

    // Every instance changes twice while all of that is held: each change goes to every watcher.
    await replicate(peer, batchesOf(1));
    await replicate(peer, batchesOf(2));
    t.diagnostic(`load held; ${Date.now() - began} ms since the start`);

    // Still alive, healthy and answering reads.
    assert.equal(node.child.exitCode, null, `the node exited: ${node.stderr()}`);
    const health = await rawCall(port, '/grpc.health.v1.Health/Check', [grpcFrame(new Uint8Array(0))]);
    assert.equal(health.code, grpc.status.OK, health.details);
    const got = await new Promise<rs.GetInstanceResponse>((resolve, reject) =>
      client.getInstance({ app: 'big', instanceId: 'i-7' }, new grpc.Metadata(), { deadline: Date.now() + WAIT_MS }, (err, res) => (err ? reject(err) : resolve(res))),
    );
    assert.equal(got.instance?.lastDirtyTimestamp, 1_002);
    const page = await new Promise<rs.GetApplicationResponse>((resolve, reject) =>
      client.getApplication({ app: 'big', pageSize: 100, pageToken: '' }, new grpc.Metadata(), { deadline: Date.now() + WAIT_MS }, (err, res) => (err ? reject(err) : resolve(res))),
    );
    assert.equal(page.instances.length, 100);
    const metrics = await fetch(`http://127.0.0.1:${started.httpPort}/metrics`, { signal: AbortSignal.timeout(WAIT_MS) }).then((r) => r.text());
    const gauge = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN);
    t.diagnostic(
      `rss ${(gauge('process_resident_memory_bytes') / 2 ** 20).toFixed(0)} MiB, heap used ${(gauge('nodejs_heap_size_used_bytes') / 2 ** 20).toFixed(0)} MiB, after ${Date.now() - began} ms`,
    );
    assert.equal(node.child.exitCode, null, `the node exited: ${node.stderr()}`);
  } catch (err) {
    // Say why the node went away, when it did.
    t.diagnostic(`node exit ${node.child.exitCode} ${node.child.signalCode}; stderr: ${node.stderr().slice(-3000)}`);
    throw err;
  } finally {
    peer.close();
    client.close();
    for (const s of sessions) s.destroy();
    node.child.kill('SIGKILL');
    await node.exit().catch(() => undefined);
  }
});
