/**
 * Full-read scenarios of the size suite: a whole-registry ListApplications read timed as a
 * client sees it, with the bytes it put on the wire (one extra read through a counting relay,
 * so the timed reads pay no relay), the server's CPU per read (from /proc) and the client's.
 * `compression` is RosterClient's option; `afterChange` makes every timed read the first one
 * after a write (a new revision: nothing cached), and checks the read saw that write;
 * `decoder` picks the client (see {@link Decoder}).
 */
import { connect as http2Connect } from 'node:http2';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { RosterClient } from '../src/client/index.js';
import { ListApplicationsRequest } from '../src/gen/roster/v1/registry_service.js';
import { TcpProxy } from '../test/support/tcp-proxy.js';
import { timeEach } from './harness.js';
import { benchInstance } from './instances.js';
import { CHANNEL_OPTIONS, type Context, type Measurement } from './scenarios.js';

export interface FullReadOptions {
  readonly compression?: 'gzip' | 'identity';
  readonly afterChange?: boolean;
  readonly decoder?: Decoder;
}

/**
 * `roster`: RosterClient (its hand-written decoder); `proto-loader`: a stock generated client;
 * `wire`: node:http2 receives the frames and only counts them (the first is decoded for its
 * revision), as a REST load generator reads a body without inflating or parsing it.
 */
export type Decoder = 'roster' | 'proto-loader' | 'wire';

const PROTO_DIR = fileURLToPath(new URL('../proto', import.meta.url));
const LIST_TIMEOUT_MS = 60_000;
const LIST_PATH = '/roster.v1.RegistryService/ListApplications';
/** The options of grpc-node's own examples: what a generic proto-loader consumer uses. */
const PROTO_LOADER_OPTIONS = { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true } as const;

/** What one read saw: its revision, the total its chunks announced, the instances decoded (none when undecoded). */
type ReadOnce = () => Promise<{ revision: number; total: number; instances?: number }>;

/** Times `budget.reads` full reads (after one untimed), at `total` instances already on the server. */
export async function timedFullReads(ctx: Context, total: number, options: FullReadOptions = {}): Promise<Measurement> {
  const { server, budget } = ctx;
  const compression = options.compression ?? 'identity';
  const relay = await TcpProxy.start(server.port);
  const direct = reader(server.address, compression, options.decoder ?? 'roster');
  const relayed = reader(relay.address, compression, options.decoder ?? 'roster');
  let marker = 0;
  const change = async (): Promise<number> => {
    // Register a fresh instance, then cancel it at once: the revision moves, the size does not.
    const instance = benchInstance(total + marker++, 'change');
    await ctx.client.register(instance);
    return (await ctx.client.cancel(instance.app!, instance.instanceId!)).revision;
  };
  try {
    await relayed.read(); // warm-up, and the relay's connection
    relay.takeBytesDown();
    const first = await relayed.read();
    const bytes = relay.takeBytesDown();
    if ((first.instances ?? first.total) !== total) throw new Error(`read ${first.instances ?? first.total} of ${total} instances`);
    await direct.read();

    let fresh = 0;
    let serverSeconds = 0;
    let clientMicros = 0;
    const durations: number[] = [];
    for (let i = 0; i < budget.reads; i++) {
      const expected = options.afterChange ? await change() : undefined;
      const serverBefore = server.cpuSeconds();
      const clientBefore = process.cpuUsage();
      const [ms] = await timeEach(1, async () => {
        const read = await direct.read();
        if ((read.instances ?? read.total) !== total) throw new Error(`read ${read.instances ?? read.total} of ${total} instances`);
        if (expected !== undefined && read.revision >= expected) fresh++;
      });
      const client = process.cpuUsage(clientBefore);
      serverSeconds += server.cpuSeconds() - serverBefore;
      clientMicros += client.user + client.system;
      durations.push(ms!);
    }
    const sorted = [...durations].sort((a, b) => a - b);
    return {
      value: percentile(sorted, 0.5),
      details: {
        reads: durations.length,
        p99Ms: round(percentile(sorted, 0.99)),
        maxMs: round(sorted.at(-1)!),
        bytesOnWire: bytes,
        mib: round(bytes / 2 ** 20),
        // /proc counts in 10 ms ticks: per-read figures are averages over all timed reads.
        serverCpuMsPerRead: round((serverSeconds * 1000) / durations.length),
        clientCpuMsPerRead: round(clientMicros / 1000 / durations.length),
        ...(options.afterChange ? { freshReads: `${fresh}/${durations.length}` } : {}),
      },
    };
  } finally {
    direct.close();
    relayed.close();
    await relay.close();
  }
}

function reader(address: string, compression: 'gzip' | 'identity', decoder: Decoder): { read: ReadOnce; close(): void } {
  if (decoder === 'roster') {
    const client = new RosterClient(address, { channelOptions: CHANNEL_OPTIONS, timeoutMs: LIST_TIMEOUT_MS, compression });
    return {
      read: async () => {
        const snapshot = await client.listApplications();
        return { revision: snapshot.revision, total: snapshot.instances.length, instances: snapshot.instances.length };
      },
      close: () => client.close(),
    };
  }
  const channelOptions = {
    ...CHANNEL_OPTIONS,
    'grpc-node.flow_control_window': 8 * 1024 * 1024,
    ...(compression === 'gzip' ? { 'grpc.default_compression_algorithm': grpc.compressionAlgorithms.gzip } : {}),
  };
  if (decoder === 'wire') return wireReader(address, compression);
  const definition = loadSync('roster/v1/registry_service.proto', { ...PROTO_LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    roster: { v1: { RegistryService: new (address: string, credentials: grpc.ChannelCredentials, options: object) => grpc.Client } };
  };
  const client = new pkg.roster.v1.RegistryService(address, grpc.credentials.createInsecure(), channelOptions);
  const list = (client as unknown as Record<string, (request: object, options: grpc.CallOptions) => grpc.ClientReadableStream<ProtoLoaderChunk>>).listApplications!.bind(client);
  return {
    read: async () => {
      let instances = 0;
      let revision = 0;
      for await (const chunk of list({}, { deadline: Date.now() + LIST_TIMEOUT_MS }) as AsyncIterable<ProtoLoaderChunk>) {
        instances += chunk.instances.length;
        revision = Number(chunk.revision);
      }
      return { revision, total: instances, instances };
    },
    close: () => client.close(),
  };
}

interface ProtoLoaderChunk {
  readonly revision: string;
  readonly instances: readonly object[];
}

/**
 * A gRPC client reduced to node:http2: one session, one stream per read, the request gzip-
 * compressed when asking for gzip (what grpc-js sends), the answer's frames counted as they
 * arrive and never inflated (but the first, for its revision and total).
 */
function wireReader(address: string, compression: 'gzip' | 'identity'): { read: ReadOnce; close(): void } {
  const session = http2Connect(`http://${address}`, { settings: { initialWindowSize: 8 * 1024 * 1024 } });
  session.on('error', () => {
    // A read fails with the stream's error.
  });
  const message = Buffer.from(ListApplicationsRequest.encode({ chunkSize: 0 }).finish());
  const body = compression === 'gzip' ? gzipSync(message) : message;
  const frame = Buffer.alloc(5 + body.length);
  frame[0] = compression === 'gzip' ? 1 : 0;
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  const read: ReadOnce = () =>
    new Promise((resolve, reject) => {
      const stream = session.request({
        ':method': 'POST',
        ':path': LIST_PATH,
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-accept-encoding': 'identity,gzip',
        ...(compression === 'gzip' ? { 'grpc-encoding': 'gzip' } : {}),
      });
      stream.setTimeout(LIST_TIMEOUT_MS, () => stream.close());
      let first: Buffer | undefined;
      let pending: Buffer[] = [];
      stream.on('data', (data: Buffer) => {
        if (first !== undefined) return;
        pending.push(data);
        const all = Buffer.concat(pending);
        if (all.length < 5 || all.length < 5 + all.readUInt32BE(1)) return;
        const bytes = all.subarray(5, 5 + all.readUInt32BE(1));
        first = all[0] === 1 ? gunzipSync(bytes) : bytes;
        pending = [];
      });
      stream.on('trailers', (trailers) => {
        if (trailers['grpc-status'] !== '0') reject(new Error(`ListApplications: grpc-status ${String(trailers['grpc-status'])} ${String(trailers['grpc-message'])}`));
      });
      stream.on('error', reject);
      stream.on('end', () => (first === undefined ? reject(new Error('ListApplications ended without a chunk')) : resolve(chunkHeader(first))));
      stream.end(frame);
    });
  return { read, close: () => session.close() };
}

/** The revision and total of a chunk, from the fields the encoder writes before any instance (wire.ts). */
function chunkHeader(chunk: Buffer): { revision: number; total: number } {
  const reader = new BinaryReader(chunk);
  let revision = 0;
  let total = 0;
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 4) break;
    if (field === 1) revision = Number(reader.uint64());
    else if (field === 3) total = Number(reader.uint64());
    else reader.skip(wireType, field);
  }
  return { revision, total };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
