import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import * as grpc from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import type * as reflection from '@grpc/reflection';
import type { Logger } from 'pino';
import { SystemClock, type Clock } from '../core/clock.js';
import type { RegistryApi } from '../core/types.js';
import { RegistryServiceService } from '../gen/roster/v1/registry_service.js';
import { ReplicationServiceService } from '../gen/roster/v1/replication_service.js';
import { AccessPolicy } from '../security/access.js';
import type { TlsMaterial } from '../security/tls-material.js';
import { ConnectionGate, DEFAULT_CONNECTION_LIMITS, type ConnectionLimits, type ConnectionStats } from './connections.js';
import { flowControl } from './flow-control.js';
import { Http2Connections } from './http2/connections.js';
import { HEALTH_SERVICE_DEFINITION, HealthService, type ServingStatus } from './health.js';
import { decodeStrictUtf8, InvalidUtf8Error } from './strict-utf8.js';
import { clientFaultsAsInvalidArgument } from './transport-errors.js';
import { CallGuard, guard, type RefusalReason } from './guard.js';
import { createRegistryService, type Limits, type RegistryServiceOptions } from './registry-service.js';
import { responseCompression } from './response-compression.js';
import { unaryFastPath, type FastUnaryMethod } from './unary-fast-path.js';
import { HAND_DECODERS } from './write-codec.js';

export type { Limits } from './registry-service.js';

/** Receives every RPC's outcome (method path, final gRPC code, latency), e.g. for metrics. */
export interface RpcObserver {
  observe(method: string, code: grpc.status, seconds: number): void;
  /** A streaming call started (then exactly one {@link streamClosed} when it ends). */
  streamOpened?(method: string): void;
  streamClosed?(method: string): void;
  /** A ListApplications read started: its answer's encoding, and whether the encoded snapshot was kept already. */
  fullRead?(encoding: 'gzip' | 'identity', cached: boolean): void;
}

export interface GrpcServerOptions {
  readonly registry: RegistryApi;
  readonly logger: Logger;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: an ephemeral port (see {@link GrpcServerHandle.port}). */
  readonly port?: number;
  /** Drives the write rate limit; default the system clock. */
  readonly clock?: Clock;
  readonly limits?: Partial<Limits>;
  /** False while reads must answer UNAVAILABLE (start-up sync); default always ready. */
  readonly ready?: () => boolean;
  readonly observer?: RpcObserver;
  /** More services on the same port (replication). */
  readonly extraServices?: ReadonlyArray<{ definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation }>;
  /** Names this node's revision history (node id and incarnation), sent with revisions so a cursor from another history is refused. */
  readonly nodeId?: string;
  /** An extra condition for the health status to be SERVING; default always. */
  readonly serving?: () => boolean;
  /** Serve TLS with this material (reloaded for new handshakes when the files change); default plain text. */
  readonly tls?: TlsMaterial;
  /** With `tls` and a CA: `require` (mTLS, the default), `optional` (verified when presented) or `none`. */
  readonly clientAuth?: ClientAuth;
  /** Who may call what, read per call (it changes on credentials reload); default open. */
  readonly policy?: () => AccessPolicy;
  /** Caps on connections and calls; omitted fields take {@link DEFAULT_CONNECTION_LIMITS}. */
  readonly connectionLimits?: Partial<ConnectionLimits>;
  /** Told of every call refused before its handler (credentials, roles, call caps). */
  readonly onRefused?: (method: string, reason: RefusalReason) => void;
  /** Bounds of ListApplications' encoded-snapshot cache; omitted fields take its defaults. */
  readonly snapshotCache?: RegistryServiceOptions['snapshotCache'];
  /** A Replicate peer that reads no result for this long has its connection closed; default 30 s. */
  readonly replicateStallMs?: number;
}

/** Whether the gRPC (or HTTP) port asks clients for a certificate, and whether one is required. */
export type ClientAuth = 'require' | 'optional' | 'none';

export interface GrpcServerHandle {
  readonly port: number;
  readonly server: grpc.Server;
  readonly health: HealthService;
  /** Connections and calls now, and what the caps refused. */
  connectionStats(): ConnectionStats;
  /** Forces health NOT_SERVING (false) or lets it follow readiness again (true). */
  setServing(serving: boolean): void;
  /** Health NOT_SERVING, Watch and Heartbeats streams end UNAVAILABLE, calls get `graceMs` to finish, then the rest is cut. */
  shutdown(graceMs?: number): Promise<void>;
}

/** gRPC's default receive limit, kept explicit: a larger request is answered RESOURCE_EXHAUSTED. */
const MAX_RECEIVE_MESSAGE_BYTES = 4 * 1024 * 1024;
const REGISTRY_SERVICE = 'roster.v1.RegistryService';
/** Methods whose requests are this project's ts-proto messages (xDS and health are not). */
const ROSTER_PATHS = '/roster.v1.';
/** Answered gzip-compressed when the request came gzip-compressed: the one large answer. */
const COMPRESSED_METHODS: ReadonlySet<string> = new Set([`/${REGISTRY_SERVICE}/ListApplications`]);
const HEALTH_SERVICE = 'grpc.health.v1.Health';
/** Reflection lists and describes itself too, as grpcurl users expect. */
const REFLECTION_SERVICES = ['grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'];
const READINESS_RECHECK_MS = 1000;
/** Ping idle connections so Watch streams of vanished clients are noticed within ~80 s. */
const KEEPALIVE_MS = 60_000;
const KEEPALIVE_TIMEOUT_MS = 20_000;
/** Streams answering each request with one response: requests are read only while few responses wait to flush. */
const FLUSH_GATED: ReadonlySet<string> = new Set([ReplicationServiceService.replicate.path]);
/**
 * Responses a Replicate peer may leave unflushed before its batches wait (each ≤ 1,000
 * results): with 4, replication throughput matched ungated reading (BENCHMARKS.md).
 */
const REPLICATE_WINDOW = 4;
/** Long enough for a loaded peer to catch up, short enough that a hostile one pins little for long. */
const DEFAULT_STALL_MS = 30_000;
const DEFAULT_GRACE_MS = 5000;

const SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': MAX_RECEIVE_MESSAGE_BYTES,
  // Nothing reads channelz; tracking every call for it costs CPU on every call.
  'grpc.enable_channelz': 0,
  'grpc.keepalive_time_ms': KEEPALIVE_MS,
  'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
};

/**
 * Serves RegistryService, grpc.health.v1.Health and server reflection (from the real
 * descriptor sets, so `buf curl` can list, describe and call everything) on one port.
 */
export async function startGrpcServer(options: GrpcServerOptions): Promise<GrpcServerHandle> {
  const log = options.logger.child({ component: 'grpc' });
  const host = options.host ?? '127.0.0.1';
  const ready = options.ready ?? (() => true);
  const clock = options.clock ?? new SystemClock();
  const service = createRegistryService({
    registry: options.registry,
    logger: log,
    clock,
    ready,
    limits: options.limits,
    nodeId: options.nodeId,
    snapshotCache: options.snapshotCache,
    ...(options.observer?.fullRead ? { onFullRead: options.observer.fullRead.bind(options.observer) } : {}),
  });
  const extra = options.extraServices ?? [];

  const limits = { ...DEFAULT_CONNECTION_LIMITS, ...options.connectionLimits };
  // Real time, as grpc-js times idle connections: a test's fake clock must not classify them.
  const gate = new ConnectionGate(limits, new SystemClock(), log);
  const policy = options.policy ?? (() => OPEN);
  // One guard for both paths: grpc-js' interceptor chain and the unary fast path.
  const calls = new CallGuard({ policy, gate, logger: log, ...(options.onRefused ? { onRefused: options.onRefused } : {}) });
  const interceptors = [
    // These two first: each must be handed grpc-js' own call (clientFaultsAsInvalidArgument
    // passes it on unwrapped; see transport-errors.ts and response-compression.ts).
    clientFaultsAsInvalidArgument(),
    responseCompression(COMPRESSED_METHODS, () => log.warn('grpc-js internals for response compression are missing: answering uncompressed')),
    ...(options.observer ? [observeRpcs(options.observer)] : []),
    guard(calls),
    refuseUndecodable(),
    flowControl({ methods: FLUSH_GATED, window: REPLICATE_WINDOW, stallMs: options.replicateStallMs ?? DEFAULT_STALL_MS, clock, cut: (c) => gate.close(c), logger: log }),
  ];
  const server = new grpc.Server({
    ...SERVER_OPTIONS,
    'grpc.max_concurrent_streams': limits.maxCallsPerConnection,
    ...(limits.idleMs > 0 ? { 'grpc.max_connection_idle_ms': limits.idleMs } : {}),
    interceptors,
  });
  const registryDefinition = adaptCodecs(RegistryServiceService);
  server.addService(registryDefinition, service.implementation);
  for (const { definition, implementation } of extra) server.addService(adaptCodecs(definition), implementation);
  const health = new HealthService();
  server.addService(adaptCodecs(HEALTH_SERVICE_DEFINITION), health.implementation);
  const served = [REGISTRY_SERVICE, HEALTH_SERVICE, ...REFLECTION_SERVICES, ...extra.map(({ definition }) => serviceName(definition))];
  addLazyReflection(server, served);

  let wanted = true;
  let stopping = false;
  let current: ServingStatus | undefined;
  const applyHealth = (): void => {
    const next: ServingStatus = !stopping && wanted && ready() && (options.serving?.() ?? true) ? 'SERVING' : 'NOT_SERVING';
    if (next === current) return;
    current = next;
    health.setStatus('', next);
    health.setStatus(REGISTRY_SERVICE, next);
    log.info({ health: next }, 'health status changed');
  };
  applyHealth();
  const recheck = setInterval(applyHealth, READINESS_RECHECK_MS);
  recheck.unref();

  // Our own listener accepts connections, counted and capped before TLS. The injector's node:http2
  // server is where grpc-js puts its stream handler, and the fallback when that cannot be found.
  const injector = server.createConnectionInjector(serverCredentials(options.tls, options.clientAuth ?? 'require'));
  const dispatch = unaryFastPath({
    server,
    methods: unaryMethods(registryDefinition, service.implementation),
    guard: calls,
    refusedDecoding: (request) => (request instanceof Undecodable ? request.details : undefined),
    ...(options.observer ? { observe: options.observer.observe.bind(options.observer) } : {}),
    maxReceiveMessageBytes: MAX_RECEIVE_MESSAGE_BYTES,
    logger: log,
  });
  // Connections are Roster's own HTTP/2 (src/grpc/http2/); each stream goes to the fast path or
  // grpc-js' handler, as node:http2's streams would.
  const connections =
    dispatch === undefined
      ? undefined
      : new Http2Connections({
          ...(options.tls ? { tls: options.tls, clientAuth: options.clientAuth ?? 'require' } : {}),
          maxConcurrentStreams: limits.maxCallsPerConnection,
          keepaliveMs: KEEPALIVE_MS,
          keepaliveTimeoutMs: KEEPALIVE_TIMEOUT_MS,
          idleMs: limits.idleMs,
          onStream: (stream, headers) => dispatch(stream, headers),
        });
  const listener = createNetServer((socket) => {
    if (!gate.admit(socket)) return;
    if (connections === undefined) injector.injectConnection(socket);
    else connections.accept(socket);
  });
  let port: number;
  try {
    port = await listen(listener, host, options.port ?? 0);
  } catch (err) {
    clearInterval(recheck);
    server.forceShutdown();
    throw err;
  }
  const tls = options.tls ? (options.tls.hasCa ? `mtls:${options.clientAuth ?? 'require'}` : 'tls') : 'plaintext';
  log.info({ host, port, services: served, tls }, 'grpc server listening');

  let stopped: Promise<void> | undefined;
  const shutdown = async (graceMs: number): Promise<void> => {
    stopping = true;
    clearInterval(recheck);
    applyHealth();
    const watchers = service.watchers;
    listener.close();
    service.endStreams({ code: grpc.status.UNAVAILABLE, details: 'server shutting down' });
    const ours = connections?.close() ?? Promise.resolve();
    const grpcJs = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    const graceful = await new Promise<boolean>((resolve) => {
      const deadline = setTimeout(() => {
        server.forceShutdown();
        gate.destroyAll();
        resolve(false);
      }, graceMs);
      void Promise.all([ours, grpcJs]).then(() => {
        clearTimeout(deadline);
        resolve(true);
      });
    });
    log.info({ port, graceMs, graceful, watchersEnded: watchers }, 'grpc server stopped');
  };

  return {
    port,
    server,
    health,
    connectionStats: () => gate.stats(),
    setServing(serving: boolean): void {
      wanted = serving;
      applyHealth();
    },
    shutdown: (graceMs = DEFAULT_GRACE_MS) => (stopped ??= shutdown(graceMs)),
  };
}

/** A request the generated decoder refused (e.g. an int64 beyond 2^53), held for the interceptor with the status details. */
class Undecodable {
  constructor(readonly details: string) {}
}

/**
 * Codecs adapted for serving: decoders never throw (grpc-js would answer INTERNAL; the client
 * sent bad input instead), the hottest requests are read by hand when they can be
 * (write-codec.ts), roster.v1 strings must be valid UTF-8 (ts-proto's decoders take a
 * reader, see strict-utf8.ts), and encoders pass bytes through, so a hot handler may write a
 * message it encoded itself (see wire.ts).
 */
function adaptCodecs<T extends grpc.ServiceDefinition>(definition: T): T {
  const guarded: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(definition)) {
    const generated = method.path.startsWith(ROSTER_PATHS) ? (bytes: Buffer) => decodeStrictUtf8((reader) => method.requestDeserialize(reader as unknown as Buffer), bytes) : method.requestDeserialize;
    const byHand = HAND_DECODERS.get(method.path);
    const decode = byHand === undefined ? generated : (bytes: Buffer) => byHand(bytes) ?? generated(bytes);
    guarded[name] = {
      ...method,
      responseSerialize: (value: unknown) => (Buffer.isBuffer(value) ? value : method.responseSerialize(value)),
      requestDeserialize: (bytes: Buffer) => {
        try {
          return decode(bytes);
        } catch (err) {
          if (err instanceof InvalidUtf8Error) return new Undecodable(err.message);
          return new Undecodable(`request could not be decoded: ${err instanceof Error ? err.message : String(err)}`);
        }
      },
    };
  }
  return guarded as unknown as T;
}

/** The unary methods of a service, by path, for the fast path (unary-fast-path.ts). */
function unaryMethods(definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): Map<string, FastUnaryMethod> {
  const methods = new Map<string, FastUnaryMethod>();
  for (const [name, method] of Object.entries(definition)) {
    if (method.requestStream || method.responseStream) continue;
    methods.set(method.path, { definition: method as grpc.MethodDefinition<unknown, unknown>, handler: implementation[name] as grpc.handleUnaryCall<unknown, unknown> });
  }
  return methods;
}

/** Answers INVALID_ARGUMENT for a request that could not be decoded; the handler never sees it. */
function refuseUndecodable(): grpc.ServerInterceptor {
  return (_descriptor, call) => {
    const intercepted: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMessage: (message, deliver) => {
            if (!(message instanceof Undecodable)) return deliver(message);
            intercepted.sendStatus({ code: grpc.status.INVALID_ARGUMENT, details: message.details });
          },
        }),
    });
    return intercepted;
  };
}

/**
 * Records every call once, whatever its service, with the status actually sent (or
 * CANCELLED when the client went away first).
 */
function observeRpcs(observer: RpcObserver): grpc.ServerInterceptor {
  return (descriptor, call) => {
    const started = performance.now();
    const streaming = descriptor.requestStream || descriptor.responseStream;
    if (streaming) observer.streamOpened?.(descriptor.path);
    let observed = false;
    const observe = (code: grpc.status): void => {
      if (observed) return;
      observed = true;
      if (streaming) observer.streamClosed?.(descriptor.path);
      observer.observe(descriptor.path, code, (performance.now() - started) / 1000);
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => next({ onCancel: () => observe(grpc.status.CANCELLED) }),
      sendStatus: (status, next) => {
        observe(status.code);
        next(status);
      },
    });
  };
}

/**
 * Server reflection, built on its first call: @grpc/reflection parses every descriptor set (and
 * its own .proto) into protobufjs objects, megabytes of heap a node nobody inspects need not
 * hold. The services are registered at once with codecs and handlers that build it then.
 */
function addLazyReflection(server: grpc.Server, served: readonly string[]): void {
  let methods: Map<string, { definition: grpc.MethodDefinition<unknown, unknown>; handler: grpc.UntypedHandleCall }> | undefined;
  const method = (path: string): { definition: grpc.MethodDefinition<unknown, unknown>; handler: grpc.UntypedHandleCall } => {
    if (methods === undefined) {
      const built = new Map<string, { definition: grpc.MethodDefinition<unknown, unknown>; handler: grpc.UntypedHandleCall }>();
      const capture = {
        addService(service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
          for (const [name, definition] of Object.entries(service)) built.set(definition.path, { definition, handler: implementation[name]! });
        },
      };
      const { ReflectionService } = createRequire(import.meta.url)('@grpc/reflection') as typeof reflection;
      new ReflectionService(reflectionDescriptors(), { services: [...served] }).addToServer(capture as unknown as grpc.Server);
      methods = built;
    }
    const found = methods.get(path);
    if (found === undefined) throw new Error(`@grpc/reflection does not serve ${path}`);
    return found;
  };
  for (const service of REFLECTION_SERVICES) {
    const path = `/${service}/ServerReflectionInfo`;
    const definition: grpc.MethodDefinition<unknown, unknown> = {
      path,
      requestStream: true,
      responseStream: true,
      requestSerialize: (value) => method(path).definition.requestSerialize(value),
      requestDeserialize: (bytes) => method(path).definition.requestDeserialize(bytes),
      responseSerialize: (value) => method(path).definition.responseSerialize(value),
      responseDeserialize: (bytes) => method(path).definition.responseDeserialize(bytes),
    };
    const handler: grpc.handleBidiStreamingCall<unknown, unknown> = (call) => (method(path).handler as grpc.handleBidiStreamingCall<unknown, unknown>)(call);
    server.addService({ ServerReflectionInfo: definition }, { ServerReflectionInfo: handler });
  }
}

/**
 * The roster, health, reflection and xDS descriptor sets (`npm run generate` builds them) as reflection's
 * input, each file exactly as compiled. proto-loader would rebuild them through protobufjs,
 * merging the files of a package and renaming map entries, which `buf curl` rejects.
 */
function reflectionDescriptors(): PackageDefinition {
  const names = ['descriptors.binpb', 'health.binpb', 'reflection.binpb', 'xds.binpb'];
  const files: Buffer[] = [];
  for (const name of names) {
    const reader = new BinaryReader(readFileSync(new URL(`../gen/${name}`, import.meta.url)));
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field === 1 && wireType === WireType.LengthDelimited) files.push(Buffer.from(reader.bytes()));
      else reader.skip(wireType, field);
    }
  }
  // Reflection reads only fileDescriptorProtos; an enum-shaped entry is the smallest definition carrying them.
  return { descriptors: { format: 'Protocol Buffer 3 EnumDescriptorProto', type: {}, fileDescriptorProtos: files } };
}

function serviceName(definition: grpc.ServiceDefinition): string {
  const [method] = Object.values(definition);
  if (!method) throw new Error('an extra service must define at least one method');
  return method.path.split('/')[1]!;
}

const OPEN = AccessPolicy.open();

/**
 * Plain text, or TLS from `material` through grpc-js' certificate-provider credentials, which
 * apply each reload to new handshakes. grpc-js 1.14 passes this function's first argument on
 * as the identity provider and the second as the CA provider (its parameter names say the
 * opposite); test/security checks both TLS and mTLS.
 */
function serverCredentials(material: TlsMaterial | undefined, clientAuth: ClientAuth): grpc.ServerCredentials {
  if (!material) return grpc.ServerCredentials.createInsecure();
  const ca = material.hasCa && clientAuth !== 'none' ? material : null;
  return grpc.experimental.createCertificateProviderServerCredentials(material, ca, clientAuth === 'require');
}

function listen(listener: NetServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(port, host, () => {
      listener.off('error', reject);
      const address = listener.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}
