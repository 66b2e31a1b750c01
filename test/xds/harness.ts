import * as grpc from '@grpc/grpc-js';
import type { JsonValue } from '@bufbuild/protobuf';
import { Registry as MetricsRegistry } from 'prom-client';
import { startGrpcServer, type GrpcServerHandle } from '../../src/grpc/server.js';
import type { Registry } from '../../src/core/registry.js';
import { AGGREGATED_DISCOVERY_SERVICE } from '../../src/xds/definition.js';
import { decodeDiscoveryResponse, encodeDiscoveryRequest, TYPE_URL } from '../../src/xds/protos.js';
import { createXdsService, type XdsService } from '../../src/xds/service.js';
import { newRegistry } from '../core/fixtures.js';
import { silentLogger, WAIT_MS } from '../grpc/helpers.js';

export { TYPE_URL };
export type Response = ReturnType<typeof decodeDiscoveryResponse>;

/** A real gRPC server on 127.0.0.1:0 serving ADS over a real registry (fake clock). */
export interface XdsHarness {
  readonly registry: Registry;
  readonly metrics: MetricsRegistry;
  readonly xds: XdsService;
  readonly server: GrpcServerHandle;
  readonly address: string;
  open(): AdsClient;
  /** A counter or gauge's value for `labels` (0 when absent). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

export async function withXds(body: (h: XdsHarness) => Promise<void>): Promise<void> {
  const { registry } = newRegistry();
  const metrics = new MetricsRegistry();
  const xds = createXdsService({ registry, logger: silentLogger(), metrics });
  const server = await startGrpcServer({
    registry,
    logger: silentLogger(),
    port: 0,
    extraServices: [{ definition: xds.definition, implementation: xds.implementation }],
  });
  const address = `127.0.0.1:${server.port}`;
  const clients: AdsClient[] = [];
  const h: XdsHarness = {
    registry,
    metrics,
    xds,
    server,
    address,
    open() {
      const c = new AdsClient(address);
      clients.push(c);
      return c;
    },
    async metric(name, labels = {}) {
      // A histogram's series (`_count`, `_sum`) live under the histogram's own name.
      const base = name.replace(/_(count|sum)$/, '');
      const metric = await (metrics.getSingleMetric(name) ?? metrics.getSingleMetric(base))?.get();
      const match = metric?.values.find((v) => ((v as { metricName?: string }).metricName ?? name) === name && Object.entries(labels).every(([k, val]) => v.labels[k] === val));
      return match?.value ?? 0;
    },
    async close() {
      for (const c of clients) c.close();
      xds.close({ code: grpc.status.UNAVAILABLE, details: 'test over' });
      await server.shutdown(500);
      registry.stop();
    },
  };
  try {
    await body(h);
  } finally {
    await h.close();
  }
}

const Client = grpc.makeGenericClientConstructor(AGGREGATED_DISCOVERY_SERVICE, 'AggregatedDiscoveryService');

/** A raw ADS stream: send requests as proto3 JSON, read decoded responses in order. */
export class AdsClient {
  readonly #client: grpc.Client;
  readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  readonly #queue: Response[] = [];
  readonly #waiters: Array<(r: Response | undefined) => void> = [];
  status: grpc.StatusObject | undefined;

  constructor(address: string, method: 'StreamAggregatedResources' | 'DeltaAggregatedResources' = 'StreamAggregatedResources') {
    this.#client = new Client(address, grpc.credentials.createInsecure());
    this.call = this.#client.makeBidiStreamRequest(
      `/envoy.service.discovery.v3.AggregatedDiscoveryService/${method}`,
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    this.call.on('data', (bytes: Buffer) => {
      const response = decodeDiscoveryResponse(bytes);
      const waiter = this.#waiters.shift();
      if (waiter) waiter(response);
      else this.#queue.push(response);
    });
    this.call.on('status', (s: grpc.StatusObject) => {
      this.status = s;
      for (const w of this.#waiters.splice(0)) w(undefined);
    });
    this.call.on('error', () => undefined);
  }

  send(request: Record<string, JsonValue>): void {
    this.call.write(encodeDiscoveryRequest({ node: { id: 'test-node', locality: { zone: 'z1' } }, ...request }));
  }

  /** Sends a request of `type` for `names`, ACKing `ack` (a response) when given. */
  request(type: keyof typeof TYPE_URL, names: string[], ack?: Response): void {
    this.send({ typeUrl: TYPE_URL[type], resourceNames: names, versionInfo: ack?.versionInfo ?? '', responseNonce: ack?.nonce ?? '' });
  }

  /** The next response; fails after `timeoutMs`. */
  next(timeoutMs = WAIT_MS): Promise<Response> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(done), 1);
        reject(new Error(`no xDS response within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (r: Response | undefined): void => {
        clearTimeout(timer);
        if (r) resolve(r);
        else reject(new Error(`stream ended: ${this.status?.code} ${this.status?.details}`));
      };
      this.#waiters.push(done);
    });
  }

  #probes = 0;

  /**
   * The responses sent before the answer to a fresh probe (a subscription to a type the
   * server does not serve, answered at once): requests on a stream are handled in order, so
   * an empty result proves the server sent nothing in reply to what came before.
   */
  async probe(): Promise<Response[]> {
    const typeUrl = `type.googleapis.com/roster.test.Probe${++this.#probes}`;
    this.send({ typeUrl, resourceNames: [] });
    const before: Response[] = [];
    for (let i = 0; i < 100; i++) {
      const r = await this.next();
      if (r.typeUrl === typeUrl) return before;
      before.push(r);
    }
    throw new Error('the probe was not answered within 100 responses');
  }

  /** Resolves with the stream's final status. */
  ended(timeoutMs = WAIT_MS): Promise<grpc.StatusObject> {
    if (this.status) return Promise.resolve(this.status);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('stream did not end')), timeoutMs);
      this.call.once('status', (s: grpc.StatusObject) => {
        clearTimeout(timer);
        resolve(s);
      });
    });
  }

  close(): void {
    this.call.cancel();
    this.#client.close();
  }
}
