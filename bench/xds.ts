/**
 * xDS push latency: Register → the new endpoint in an xDS client's ClusterLoadAssignment, with
 * 1 and with 1,000 ADS streams subscribed to the same name. The streams are raw ADS streams in
 * this process (grpc-js-xds shares one stream per process, so a thousand real clients would be a
 * thousand processes); each one ACKs every response, as clients do. Latency is measured from
 * just before the Register call to the response's arrival here, so it includes the Register
 * RPC, the registry's change feed, the encoding, the push and the transport.
 */
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import * as grpc from '@grpc/grpc-js';
import { RosterClient } from '../src/client/index.js';
import { InstanceStatus } from '../src/gen/roster/v1/instance.js';
import { AGGREGATED_DISCOVERY_SERVICE, encodeDiscoveryRequest, TYPE_URL } from '../src/xds/protos.js';
import { ServerProcess } from './harness.js';
import type { ClusterSuite, Measurement } from './scenarios.js';

const APP = 'xds-bench';
const STREAM_COUNTS = [1, 1000] as const;
const WAIT_MS = 30_000;

export const XDS_SUITE: ClusterSuite = {
  name: 'xds',
  scenarios: [
    { id: 'xds-push-1-p50', title: 'j. Register → xDS endpoint update, 1 ADS stream, p50', unit: 'ms' },
    { id: 'xds-push-1-p99', title: 'j. Register → xDS endpoint update, 1 ADS stream, p99', unit: 'ms', target: () => ({ atMost: 50 }) },
    { id: 'xds-push-1000-p50', title: 'j. Register → xDS endpoint update, 1,000 ADS streams, p50', unit: 'ms' },
    {
      id: 'xds-push-1000-p99',
      title: 'j. Register → xDS endpoint update, 1,000 ADS streams, p99',
      unit: 'ms',
      target: () => ({ atMost: 500 }),
    },
  ],
  async run({ budget, serverFlags }) {
    const server = await ServerProcess.start(serverFlags);
    const client = new RosterClient(server.address);
    const results = new Map<string, Measurement>();
    try {
      for (const streams of STREAM_COUNTS) {
        process.stderr.write(`running xds push with ${streams} stream(s) ...\n`);
        const rounds = streams === 1 ? budget.reads * 20 : budget.reads * 4;
        const samples = await measure(server.address, client, streams, rounds);
        const details = { streams, rounds, samples: samples.length, p50: q(samples, 0.5), p99: q(samples, 0.99), max: q(samples, 1) };
        results.set(`xds-push-${streams}-p50`, { value: details.p50, details });
        results.set(`xds-push-${streams}-p99`, { value: details.p99, details });
      }
    } finally {
      client.close();
      await server.stop();
    }
    return results;
  },
};

/** Per round: register a new instance and time its arrival on every stream; then cancel it. */
async function measure(address: string, client: RosterClient, count: number, rounds: number): Promise<number[]> {
  const streams = Array.from({ length: count }, () => new BenchStream(address));
  try {
    await Promise.all(streams.map((s) => s.subscribe()));
    const samples: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const ip = `10.99.${round >> 8}.${round & 255}`;
      const marker = addressMarker(ip);
      const arrivals = streams.map((s) => s.until((bytes) => bytes.includes(marker)));
      const start = performance.now();
      await client.register({
        app: APP,
        instanceId: `i-${round}`,
        hostName: 'bench.internal',
        ipAddr: ip,
        port: { number: 8080, enabled: true },
        status: InstanceStatus.INSTANCE_STATUS_UP,
        zone: 'z1',
      });
      for (const at of await Promise.all(arrivals)) samples.push(at - start);
      // Back to an empty assignment (not timed), so every round pushes the same size.
      const gone = streams.map((s) => s.until((bytes) => !bytes.includes(marker)));
      await client.cancel(APP, `i-${round}`);
      await Promise.all(gone);
    }
    return samples;
  } finally {
    for (const s of streams) s.close();
  }
}

/** The address as it appears in the encoded SocketAddress: its length byte, then the text. */
function addressMarker(ip: string): Buffer {
  return Buffer.concat([Buffer.from([ip.length]), Buffer.from(ip)]);
}

const Client = grpc.makeGenericClientConstructor(AGGREGATED_DISCOVERY_SERVICE, 'AggregatedDiscoveryService');

/** One ADS stream subscribed to the bench app's assignment, ACKing every response. */
class BenchStream {
  readonly #client: grpc.Client;
  readonly #call: grpc.ClientDuplexStream<Buffer, Buffer>;
  #waiter: { check: (bytes: Buffer) => boolean; resolve: (at: number) => void } | undefined;

  constructor(address: string) {
    this.#client = new Client(address, grpc.credentials.createInsecure(), { 'grpc.per_rpc_retry_buffer_size': 0 });
    this.#call = this.#client.makeBidiStreamRequest(
      `/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources`,
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    this.#call.on('data', (bytes: Buffer) => this.#onResponse(bytes));
    this.#call.on('error', () => undefined);
  }

  subscribe(): Promise<number> {
    const first = this.until(() => true);
    this.#call.write(encodeDiscoveryRequest({ node: { id: 'bench', locality: { zone: 'z1' } }, typeUrl: TYPE_URL.endpoint, resourceNames: [APP] }));
    return first;
  }

  /** Resolves with the arrival time of the next response (or the current one) satisfying `check`. */
  until(check: (bytes: Buffer) => boolean): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching xDS response within ${WAIT_MS} ms`)), WAIT_MS);
      this.#waiter = {
        check,
        resolve: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
      };
    });
  }

  close(): void {
    this.#call.cancel();
    this.#client.close();
  }

  #onResponse(bytes: Buffer): void {
    const at = performance.now();
    const { version, nonce } = readVersionAndNonce(bytes);
    this.#call.write(ackRequest(version, nonce));
    const waiter = this.#waiter;
    if (waiter?.check(bytes)) {
      this.#waiter = undefined;
      waiter.resolve(at);
    }
  }
}

/**
 * An ACK (DiscoveryRequest: version_info 1, resource_names 3, type_url 4, response_nonce 5)
 * written by hand: the client side must not be what the latency measures.
 */
function ackRequest(version: string, nonce: string): Buffer {
  const w = new BinaryWriter();
  w.tag(1, WireType.LengthDelimited).string(version);
  w.tag(3, WireType.LengthDelimited).string(APP);
  w.tag(4, WireType.LengthDelimited).string(TYPE_URL.endpoint);
  w.tag(5, WireType.LengthDelimited).string(nonce);
  return Buffer.from(w.finish());
}

/** DiscoveryResponse fields 1 (version_info) and 5 (nonce), read without decoding the resources. */
function readVersionAndNonce(bytes: Uint8Array): { version: string; nonce: string } {
  const reader = new BinaryReader(bytes);
  let version = '';
  let nonce = '';
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) version = reader.string();
    else if (field === 5 && wireType === WireType.LengthDelimited) nonce = reader.string();
    else reader.skip(wireType, field);
  }
  return { version, nonce };
}

function q(values: readonly number[], quantile: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const position = quantile * (sorted.length - 1);
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return Math.round((sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low)) * 100) / 100;
}
