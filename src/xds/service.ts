import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry as MetricsRegistry } from 'prom-client';
import type { RegistryApi } from '../core/types.js';
import { toRpcStatus, type RpcStatus } from '../grpc/errors.js';
import type { AdsStream, StreamObserver } from './ads-stream.js';
import type { XdsResourceCache } from './cache.js';
import { AGGREGATED_DISCOVERY_SERVICE } from './definition.js';
import type { decodeDiscoveryRequest } from './protos.js';

export interface XdsServiceOptions {
  readonly registry: RegistryApi;
  readonly logger: Logger;
  /** Where the xDS series go (the node's metrics registry); none when omitted. */
  readonly metrics?: MetricsRegistry;
}

export interface XdsService {
  readonly definition: grpc.ServiceDefinition;
  readonly implementation: grpc.UntypedServiceImplementation;
  /** Open ADS streams. */
  readonly streams: number;
  /** Ends every open stream with `status` (shutdown) and stops following the registry. */
  close(status: RpcStatus): void;
}

/**
 * A stream whose client does not read is cut past this much unsent data, rather than buffer
 * pushes without bound (each push holds the complete state, so nothing is lost on reconnect).
 */
const MAX_UNSENT_BYTES = 8 * 1024 * 1024;
const PUSH_SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const SHUTTING_DOWN: RpcStatus = { code: grpc.status.UNAVAILABLE, details: 'server shutting down' };

/**
 * What serving streams takes besides the definition. Loaded with the first stream: its modules
 * bring @bufbuild/protobuf's reflection, about 2 MiB of heap a node no xDS client talks to need
 * not hold, and the resource cache follows the registry only from then on.
 */
interface Engine {
  readonly cache: XdsResourceCache;
  readonly AdsStream: typeof AdsStream;
  readonly decode: typeof decodeDiscoveryRequest;
}

/**
 * envoy.service.discovery.v3.AggregatedDiscoveryService on the gRPC port: proxyless gRPC
 * clients (and Envoy's EDS) resolve `xds:///APP` to the application's UP instances. State of
 * the world only; the delta variant answers UNIMPLEMENTED.
 */
export function createXdsService(options: XdsServiceOptions): XdsService {
  const log = options.logger.child({ component: 'xds' });
  const observer = createObserver(options.metrics);
  const open = new Set<grpc.ServerDuplexStream<Buffer, Buffer>>();
  let closed = false;
  let cache: XdsResourceCache | undefined;
  let engine: Promise<Engine> | undefined;
  const load = (): Promise<Engine> =>
    (engine ??= Promise.all([import('./cache.js'), import('./ads-stream.js'), import('./protos.js')]).then(([c, a, p]) => {
      cache = new c.XdsResourceCache({ registry: options.registry, logger: log });
      if (closed) cache.close();
      return { cache, AdsStream: a.AdsStream, decode: p.decodeDiscoveryRequest };
    }));

  const end = (call: grpc.ServerDuplexStream<Buffer, Buffer>, status: RpcStatus): void => {
    if (!call.destroyed && !call.writableEnded) call.emit('error', status);
  };

  const stream = (call: grpc.ServerDuplexStream<Buffer, Buffer>): void => {
    if (closed) return end(call, SHUTTING_DOWN);
    // Requests wait in the call's buffer meanwhile.
    load().then(
      (loaded) => serve(loaded, call),
      (err: unknown) => end(call, toRpcStatus(err, log)),
    );
  };

  const serve = ({ cache, AdsStream, decode }: Engine, call: grpc.ServerDuplexStream<Buffer, Buffer>): void => {
    if (closed) return end(call, SHUTTING_DOWN);
    if (call.cancelled || call.destroyed) return;
    const ads = new AdsStream({
      cache,
      logger: log,
      observer,
      send: (response) => {
        if (call.destroyed || call.writableEnded) return;
        if (call.writableLength > MAX_UNSENT_BYTES) {
          log.warn({ unsentBytes: call.writableLength }, 'xds client does not read its stream: ending it');
          return end(call, { code: grpc.status.RESOURCE_EXHAUSTED, details: 'client is not reading xDS responses' });
        }
        call.write(response);
      },
    });
    open.add(call);
    observer.opened();
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      ads.close();
      open.delete(call);
      observer.closed();
    };
    call.on('data', (bytes: Buffer) => {
      let request: ReturnType<typeof decode>;
      try {
        request = decode(bytes);
      } catch (err) {
        end(call, { code: grpc.status.INVALID_ARGUMENT, details: `DiscoveryRequest could not be decoded: ${err instanceof Error ? err.message : String(err)}` });
        return finish();
      }
      try {
        ads.handle(request);
      } catch (err) {
        end(call, toRpcStatus(err, log));
        finish();
      }
    });
    call.on('end', () => {
      finish();
      if (!call.writableEnded) call.end();
    });
    call.on('error', finish);
    call.on('close', finish);
    call.on('cancelled', finish);
  };

  const delta = (call: grpc.ServerDuplexStream<Buffer, Buffer>): void =>
    end(call, { code: grpc.status.UNIMPLEMENTED, details: 'delta xDS is not served: use StreamAggregatedResources (state of the world)' });

  return {
    definition: AGGREGATED_DISCOVERY_SERVICE,
    implementation: { StreamAggregatedResources: stream, DeltaAggregatedResources: delta } as grpc.UntypedServiceImplementation,
    get streams() {
      return open.size;
    },
    close(status: RpcStatus): void {
      closed = true;
      for (const call of [...open]) end(call, status);
      cache?.close();
    },
  };
}

function createObserver(register: MetricsRegistry | undefined): StreamObserver & { opened(): void; closed(): void } {
  const registers = register ? [register] : [];
  const streams = new Gauge({ name: 'roster_xds_streams', help: 'Open xDS (ADS) streams.', registers });
  const resources = new Counter({
    name: 'roster_xds_resources_sent_total',
    help: 'xDS resources sent, by type (lds, rds, cds, eds, unknown).',
    labelNames: ['type'],
    registers,
  });
  const responses = new Counter({ name: 'roster_xds_responses_total', help: 'xDS responses sent, by type.', labelNames: ['type'], registers });
  const acks = new Counter({ name: 'roster_xds_acks_total', help: 'xDS responses clients accepted, by type.', labelNames: ['type'], registers });
  const nacks = new Counter({ name: 'roster_xds_nacks_total', help: 'xDS responses clients rejected (NACK), by type.', labelNames: ['type'], registers });
  const unknown = new Counter({ name: 'roster_xds_unknown_type_requests_total', help: 'xDS subscriptions to a type this server does not serve.', registers });
  const push = new Histogram({
    name: 'roster_xds_push_latency_seconds',
    help: 'From a registry change to the xDS response it caused being written to a stream.',
    buckets: PUSH_SECONDS_BUCKETS,
    registers,
  });
  return {
    opened: () => streams.inc(),
    closed: () => streams.dec(),
    sent(type, count) {
      responses.inc({ type });
      resources.inc({ type }, count);
    },
    ack: (type) => acks.inc({ type }),
    nack: (type) => nacks.inc({ type }),
    pushed: (seconds) => push.observe(seconds),
    unknownType: () => unknown.inc(),
  };
}
