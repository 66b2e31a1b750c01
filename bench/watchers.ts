/**
 * Memory held by Watch streams: many live watchers, and one that stops reading, while the
 * registry changes at 1,000 writes/s. The server must stay bounded in both.
 */
import * as grpc from '@grpc/grpc-js';
import { RegistryServiceClient, type WatchResponse } from '../src/gen/roster/v1/registry_service.js';
import { benchInstance, benchKey } from './instances.js';
import type { Context, Measurement } from './scenarios.js';

const MiB = 1024 * 1024;
const WRITES_PER_SECOND = 1_000;
const STREAMS_PER_CHANNEL = 500;
const PAUSE_MS = 12_000;

/**
 * RSS with `count` watchers, each following one application (as a service's clients do),
 * while writes run at 1,000/s spread over the applications.
 */
export async function manyWatchers(ctx: Context, count: number): Promise<Measurement> {
  const before = await ctx.server.memory();
  const channels = Array.from({ length: Math.ceil(count / STREAMS_PER_CHANNEL) }, (_, i) => newChannel(ctx, i));
  const calls: grpc.ClientReadableStream<WatchResponse>[] = [];
  let changes = 0;
  try {
    const opened = Array.from({ length: count }, (_, i) => {
      const call = channels[Math.floor(i / STREAMS_PER_CHANNEL)]!.watch({ app: benchKey(i, 'watch').app, vip: '', nodeId: '' });
      calls.push(call);
      call.on('error', () => undefined);
      return new Promise<void>((resolve, reject) => {
        call.once('data', () => resolve());
        call.once('error', reject);
        call.on('data', (m: WatchResponse) => (changes += m.changes.length));
      });
    });
    await Promise.all(opened);
    const writes = await writeFor(ctx, ctx.budget.rounds * ctx.budget.roundMs);
    const during = await ctx.server.memory();
    return {
      value: during.rss / MiB,
      details: { watchers: count, writes, changesDelivered: changes, rssBeforeMiB: round(before.rss / MiB), heapUsedMiB: round(during.node.heapUsed / MiB) },
    };
  } finally {
    for (const call of calls) call.cancel();
    for (const channel of channels) channel.close();
  }
}

/** RSS growth while one watcher has stopped reading and writes run at 1,000/s. */
export async function pausedWatcher(ctx: Context): Promise<Measurement> {
  // The instances the writes change exist beforehand: only the watcher's share may grow.
  await writeFor(ctx, 1_000);
  const before = await ctx.server.memory();
  const channel = newChannel(ctx, 0);
  const call = channel.watch({ app: '', vip: '', nodeId: '' });
  call.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      call.once('data', () => resolve());
      call.once('error', reject);
    });
    call.pause();
    // Longer than the 10,000-change backlog a watcher may fall behind by at this rate.
    const writes = await writeFor(ctx, PAUSE_MS);
    const during = await ctx.server.memory();
    // Read what was buffered: a watcher left that far behind must have been told to resync.
    let resync = false;
    await new Promise<void>((resolve) => {
      call.on('data', (m: WatchResponse) => (resync ||= m.resyncRequired));
      call.once('end', resolve);
      call.once('error', () => resolve());
      call.resume();
      setTimeout(resolve, 5_000).unref();
    });
    return {
      value: (during.rss - before.rss) / MiB,
      details: { writes, rssBeforeMiB: round(before.rss / MiB), rssDuringMiB: round(during.rss / MiB), toldToResync: resync },
    };
  } finally {
    call.cancel();
    channel.close();
  }
}

function newChannel(ctx: Context, i: number): RegistryServiceClient {
  // A distinct option per channel, so grpc-js does not share one connection between them.
  return new RegistryServiceClient(ctx.server.address, grpc.credentials.createInsecure(), { 'grpc.per_rpc_retry_buffer_size': 0, 'bench.channel': i });
}

/** Changes 1,000 instances' metadata at 1,000 writes/s for `ms`; returns the writes done. */
async function writeFor(ctx: Context, ms: number): Promise<number> {
  const start = Date.now();
  let done = 0;
  while (Date.now() - start < ms) {
    const due = Math.floor(((Date.now() - start) / 1000) * WRITES_PER_SECOND);
    const batch: Promise<unknown>[] = [];
    for (; done < due; done++) {
      const instance = benchInstance(done % 1000, 'watch');
      batch.push(ctx.client.register({ ...instance, metadata: { ...instance.metadata, seq: String(done) } }));
    }
    await Promise.all(batch);
    await new Promise((r) => setTimeout(r, 10));
  }
  return done;
}

const round = (n: number): number => Math.round(n * 10) / 10;
