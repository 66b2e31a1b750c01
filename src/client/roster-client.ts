import {
  compressionAlgorithms,
  credentials as grpcCredentials,
  InterceptingCall,
  Metadata,
  status,
  type CallOptions,
  type ChannelCredentials,
  type ClientDuplexStream,
  type ClientOptions,
  type ClientReadableStream,
  type ClientUnaryCall,
  type Interceptor,
  type ServiceError,
} from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { SystemClock, type Clock } from '../core/clock.js';
import { Instance, type DeepPartial, type InstanceStatus } from '../gen/roster/v1/instance.js';
import {
  ListApplicationsRequest,
  type RegistryServiceClient,
  type CancelResponse,
  type ClearStatusOverrideResponse,
  type GetApplicationResponse,
  type GetDeltaResponse,
  type GetInstanceResponse,
  type HeartbeatResponse,
  type HeartbeatsRequest,
  type HeartbeatsResponse,
  type ListApplicationsResponse,
  type ListByVipResponse,
  type RegisterResponse,
  type SetStatusOverrideResponse,
  type UpdateMetadataResponse,
  type WatchResponse,
} from '../gen/roster/v1/registry_service.js';
import { backoffDelay, sleep, type BackoffOptions } from './backoff.js';
import { clientError, isRetryable, isServiceError } from './errors.js';
import { HeartbeatStream } from './heartbeat-stream.js';
import { InstanceAgent, type InstanceAgentOptions } from './instance-agent.js';
import { ServerSet, type Connection } from './servers.js';
import { decodeListChunk } from './wire.js';

/** Per-call options. `deadline` (epoch ms or Date) wins over `timeoutMs`. */
export interface CallOpts {
  readonly signal?: AbortSignal;
  readonly deadline?: Date | number;
  readonly timeoutMs?: number;
}

/**
 * How to reach the servers. Every connection setting lives here (credentials, channel options),
 * so transport security is one option for every channel the client opens.
 */
export interface RosterClientOptions {
  /** Defaults to insecure (plain text); TLS: `credentials.createSsl(ca, key?, cert?)` (a key and certificate for mTLS). */
  readonly credentials?: ChannelCredentials;
  /** A bearer token sent with every call (`authorization: Bearer …`), for nodes with a credentials file. */
  readonly token?: string;
  /** Extra channel options; `grpc.per_rpc_retry_buffer_size` is forced to 0 (see the README's client section). */
  readonly channelOptions?: Partial<ClientOptions>;
  /**
   * `gzip`: full reads (listApplications, and so the snapshot a Discovery starts from) ask the
   * server for gzip-compressed answers, about a tenth of the bytes (README, "Compressed full
   * reads"). grpc-js compresses per channel, not per call, so these reads go on a second
   * channel to the same server whose requests are gzip-compressed; other calls are unchanged.
   * Default `identity`: nothing is compressed.
   */
  readonly compression?: 'gzip' | 'identity';
  /** Deadline of unary calls without their own (default 10 s). */
  readonly timeoutMs?: number;
  /** A `name:port` whose addresses are servers too (a Kubernetes Service or headless Service). */
  readonly dns?: string;
  /** Attempts of one call across servers on UNAVAILABLE, the first included (default: 2 per server, at least 3). */
  readonly maxAttempts?: number;
  /** Drives retry and reconnect backoff (default: the system clock, with timers that keep the process alive). */
  readonly clock?: Clock;
  /** Backoff between retries once every server has failed (default 100 ms to 30 s, jittered). */
  readonly backoff?: BackoffOptions;
  readonly logger?: Logger;
  /** Told whenever the client moves to another server. */
  readonly onFailover?: (from: string, to: string, err: ServiceError) => void;
}

/** A whole-registry snapshot assembled from the ListApplications stream. */
export interface ApplicationsSnapshot {
  readonly revision: number;
  readonly reconcileHash: string;
  readonly instances: Instance[];
  /** The node the revision belongs to: pass it to watch/getDelta with the revision. */
  readonly nodeId: string;
}

/** What to watch. `sinceRevision` unset means "only changes from now on". */
export interface WatchFilter {
  readonly app?: string;
  readonly vip?: string;
  readonly sinceRevision?: number;
  /** The node `sinceRevision` came from; another node answers resync_required rather than replaying the wrong history. */
  readonly nodeId?: string;
}

/** Cancellation and the reconnect policy of {@link RosterClient.watch}. */
export interface WatchOptions {
  /** Ends the iteration (quietly) and the underlying stream. */
  readonly signal?: AbortSignal;
  /** Drives the reconnect backoff (default: the system clock). */
  readonly clock?: Clock;
  readonly backoff?: BackoffOptions;
  /** Consecutive failed attempts (no message received) before the last error is thrown (default 20). */
  readonly maxRetries?: number;
  /** Told about each reconnect, e.g. to log it. */
  readonly onRetry?: (err: ServiceError, delayMs: number) => void;
}

const DEFAULT_TIMEOUT_MS = 10_000;
/** A 100k-instance snapshot takes seconds on loopback; give slow links room. */
const SNAPSHOT_TIMEOUT_MS = 60_000;
const FLOW_CONTROL_WINDOW_BYTES = 8 * 1024 * 1024;
const LIST_APPLICATIONS_PATH = '/roster.v1.RegistryService/ListApplications';

type UnaryStart<Res> = (stub: RegistryServiceClient, metadata: Metadata, options: Partial<CallOptions>, callback: (err: ServiceError | null, res: Res) => void) => ClientUnaryCall;

/**
 * A promise-based client for roster.v1.RegistryService. It sticks to one server of a list (and
 * of a DNS name's addresses) and fails over to the next when that server is down, shutting
 * down or not synced yet: unary calls and snapshots are retried there (UNAVAILABLE only, within
 * the call's deadline, jittered backoff once every server failed), watches reconnect there and
 * the shared Heartbeats stream reopens there. Failures reject with the grpc-js ServiceError
 * unchanged. Aborting a call's signal cancels it (CANCELLED).
 */
export class RosterClient {
  readonly #servers: ServerSet;
  readonly #timeoutMs: number;
  readonly #maxAttempts: number;
  readonly #clock: Clock;
  readonly #backoff: BackoffOptions | undefined;
  readonly #logger: Logger;
  readonly #agents = new Set<InstanceAgent>();
  #heartbeats: HeartbeatStream | undefined;

  /** `servers`: `host:port`, a comma-separated list of them, or an array; may be empty when `options.dns` is set. */
  constructor(servers: string | readonly string[], options: RosterClientOptions = {}) {
    const list = (typeof servers === 'string' ? servers.split(',') : servers).map((s) => s.trim()).filter((s) => s !== '');
    if (options.compression !== undefined && options.compression !== 'gzip' && options.compression !== 'identity') {
      throw new Error(`compression must be 'gzip' or 'identity', got ${JSON.stringify(options.compression)}`);
    }
    this.#logger = options.logger ?? pino({ enabled: false });
    this.#servers = new ServerSet({
      servers: list,
      dns: options.dns,
      credentials: options.credentials ?? grpcCredentials.createInsecure(),
      channelOptions: {
        // HTTP/2's default 64 KiB window makes a large snapshot wait on window updates every
        // 64 KiB; 8 MiB roughly halved a 100k-instance read here (BENCHMARKS.md).
        'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW_BYTES,
        ...options.channelOptions,
        ...(options.token !== undefined ? { interceptors: [...(options.channelOptions?.interceptors ?? []), bearerToken(options.token)] } : {}),
        'grpc.per_rpc_retry_buffer_size': 0,
        // Each channel its own subchannels: a channel opened after a failover (or to a restarted
        // server) connects at once instead of inheriting a shared subchannel's reconnect backoff.
        'grpc.use_local_subchannel_pool': 1,
      },
      readChannelOptions: options.compression === 'gzip' ? { 'grpc.default_compression_algorithm': compressionAlgorithms.gzip } : undefined,
      logger: this.#logger,
      ...(options.onFailover ? { onFailover: options.onFailover } : {}),
    });
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? Math.max(3, 2 * this.#servers.addresses.length));
    this.#clock = options.clock ?? new SystemClock({ keepProcessAlive: true });
    this.#backoff = options.backoff;
  }

  /** The server calls go to now. */
  get server(): string {
    return this.#servers.current().address;
  }

  /** Every server this client may use, in failover order. */
  get servers(): readonly string[] {
    return this.#servers.addresses;
  }

  /** The one Heartbeats stream this client renews leases on (opened on first use, reopened on failover). */
  get heartbeats(): HeartbeatStream {
    this.#heartbeats ??= new HeartbeatStream(this, { clock: this.#clock, ...(this.#backoff ? { backoff: this.#backoff } : {}) });
    return this.#heartbeats;
  }

  /**
   * Keeps `instance` registered until {@link close} (or the agent's own `stop()`), renewing its
   * lease on the shared Heartbeats stream and registering again wherever a server has lost it.
   */
  async keepRegistered(instance: InstanceAgentOptions['instance'], options: Omit<InstanceAgentOptions, 'client' | 'instance'> = {}): Promise<InstanceAgent> {
    const agent = new InstanceAgent({ logger: this.#logger, backoff: this.#backoff, ...options, client: this, instance });
    this.#agents.add(agent);
    try {
      await agent.start();
    } catch (err) {
      this.#agents.delete(agent);
      throw err;
    }
    agent.onStop(() => this.#agents.delete(agent));
    return agent;
  }

  /** Stores or replaces `instance`; `app` and `instanceId` are required by the server. */
  register(instance: DeepPartial<Instance>, opts?: CallOpts): Promise<RegisterResponse> {
    const request = { instance: Instance.fromPartial(instance) };
    return this.#unary((stub, m, o, cb) => stub.register(request, m, o, cb), opts);
  }

  /** Renews a lease. NOT_FOUND means "register again" (see the proto). */
  heartbeat(app: string, instanceId: string, lastDirtyTimestamp = 0, opts?: CallOpts): Promise<HeartbeatResponse> {
    const request = { app, instanceId, lastDirtyTimestamp };
    return this.#unary((stub, m, o, cb) => stub.heartbeat(request, m, o, cb), opts);
  }

  /** Removes an instance that is shutting down. */
  cancel(app: string, instanceId: string, opts?: CallOpts): Promise<CancelResponse> {
    return this.#unary((stub, m, o, cb) => stub.cancel({ app, instanceId }, m, o, cb), opts);
  }

  /** Forces an instance's status (operator action) until cleared. */
  setStatusOverride(app: string, instanceId: string, status: InstanceStatus, opts?: CallOpts): Promise<SetStatusOverrideResponse> {
    return this.#unary((stub, m, o, cb) => stub.setStatusOverride({ app, instanceId, status }, m, o, cb), opts);
  }

  /** Removes the override; the instance's next heartbeat gets NOT_FOUND and it re-registers. */
  clearStatusOverride(app: string, instanceId: string, opts?: CallOpts): Promise<ClearStatusOverrideResponse> {
    return this.#unary((stub, m, o, cb) => stub.clearStatusOverride({ app, instanceId }, m, o, cb), opts);
  }

  /** Removes `remove`, then sets `set`. */
  updateMetadata(app: string, instanceId: string, set: Readonly<Record<string, string>>, remove: readonly string[] = [], opts?: CallOpts): Promise<UpdateMetadataResponse> {
    const request = { app, instanceId, set: { ...set }, remove: [...remove] };
    return this.#unary((stub, m, o, cb) => stub.updateMetadata(request, m, o, cb), opts);
  }

  /** One instance; NOT_FOUND when unknown. */
  getInstance(app: string, instanceId: string, opts?: CallOpts): Promise<GetInstanceResponse> {
    return this.#unary((stub, m, o, cb) => stub.getInstance({ app, instanceId }, m, o, cb), opts);
  }

  /** An application's instances, every page of them; an unknown app has none (not an error). */
  async getApplication(app: string, opts?: CallOpts): Promise<GetApplicationResponse> {
    const first = await this.#unary<GetApplicationResponse>((stub, m, o, cb) => stub.getApplication({ app, pageSize: 0, pageToken: '' }, m, o, cb), opts);
    for (let token = first.nextPageToken; token !== ''; ) {
      const next = await this.#unary<GetApplicationResponse>((stub, m, o, cb) => stub.getApplication({ app, pageSize: 0, pageToken: token }, m, o, cb), opts);
      first.instances.push(...next.instances);
      token = next.nextPageToken;
    }
    return { ...first, nextPageToken: '' };
  }

  /** Instances serving `vip` (its secure VIPs when `secure`), every page of them. */
  async listByVip(vip: string, secure = false, opts?: CallOpts): Promise<ListByVipResponse> {
    const first = await this.#unary<ListByVipResponse>((stub, m, o, cb) => stub.listByVip({ vip, secure, pageSize: 0, pageToken: '' }, m, o, cb), opts);
    for (let token = first.nextPageToken; token !== ''; ) {
      const next = await this.#unary<ListByVipResponse>((stub, m, o, cb) => stub.listByVip({ vip, secure, pageSize: 0, pageToken: token }, m, o, cb), opts);
      first.instances.push(...next.instances);
      token = next.nextPageToken;
    }
    return { ...first, nextPageToken: '' };
  }

  /** Changes after `sinceRevision`; follow `hasMore`, and on `resyncRequired` list again. */
  getDelta(sinceRevision: number, maxChanges = 0, opts?: CallOpts & { readonly nodeId?: string }): Promise<GetDeltaResponse> {
    const nodeId = opts?.nodeId ?? '';
    return this.#unary((stub, m, o, cb) => stub.getDelta({ sinceRevision, maxChanges, nodeId }, m, o, cb), opts);
  }

  /**
   * The whole registry, collected from the ListApplications stream (of one server: a failed
   * attempt is restarted whole on the next). Every chunk must carry the same revision and the
   * total must match, or the snapshot is refused (DATA_LOSS).
   */
  listApplications(opts: CallOpts & { readonly chunkSize?: number } = {}): Promise<ApplicationsSnapshot> {
    const deadline = this.#deadline(opts, SNAPSHOT_TIMEOUT_MS);
    return this.#withFailover(opts.signal, deadline, async (conn) => {
      // The generated method with a faster decoder for the one large answer (see wire.ts).
      const call = conn.reads.makeServerStreamRequest(
        LIST_APPLICATIONS_PATH,
        (request: ListApplicationsRequest) => Buffer.from(ListApplicationsRequest.encode(request).finish()),
        decodeListChunk,
        { chunkSize: opts.chunkSize ?? 0 },
        { deadline },
      );
      const instances: Instance[] = [];
      let first: ListApplicationsResponse | undefined;
      await withSignal(call, opts.signal, async () => {
        for await (const chunk of call as AsyncIterable<ListApplicationsResponse>) {
          first ??= chunk;
          if (chunk.revision !== first.revision) {
            throw clientError(status.DATA_LOSS, `snapshot chunks disagree on revision (${first.revision}, ${chunk.revision})`);
          }
          for (const instance of chunk.instances) instances.push(instance);
        }
      });
      if (first === undefined) throw clientError(status.DATA_LOSS, 'ListApplications ended without a chunk');
      if (instances.length !== first.totalInstances) {
        throw clientError(status.DATA_LOSS, `snapshot has ${instances.length} of ${first.totalInstances} instances`);
      }
      return { revision: first.revision, reconcileHash: first.reconcileHash, instances, nodeId: first.nodeId };
    });
  }

  /**
   * Live changes as an async iterable. After a stream error it reconnects from the last revision
   * it delivered — on the next server if this one failed — so the caller sees no gap and no
   * repeat. Another server (or this one after a restart) cannot continue that history: it
   * answers resync_required, which is delivered and ends the iteration: list again, then watch
   * from the snapshot's revision. Permanent errors (e.g. INVALID_ARGUMENT) are thrown at once.
   */
  async *watch(filter: WatchFilter = {}, options: WatchOptions = {}): AsyncGenerator<WatchResponse, void, undefined> {
    const { signal } = options;
    const clock = options.clock ?? this.#clock;
    const maxRetries = options.maxRetries ?? 20;
    let sinceRevision = filter.sinceRevision;
    let nodeId = filter.nodeId ?? '';
    let failures = 0;
    while (!signal?.aborted) {
      // The cursor travels with the node that issued it: reconnecting to another node then
      // yields resync_required instead of a silent gap.
      const conn = this.#servers.current();
      const call = conn.stub.watch({ app: filter.app ?? '', vip: filter.vip ?? '', sinceRevision, nodeId });
      const onAbort = (): void => call.cancel();
      signal?.addEventListener('abort', onAbort, { once: true });
      let failure: ServiceError | undefined;
      let movedOn = false;
      try {
        for await (const message of call as AsyncIterable<WatchResponse>) {
          failures = 0;
          this.#servers.succeeded(conn);
          sinceRevision = message.revision;
          nodeId = message.nodeId;
          yield message;
          if (message.resyncRequired) return;
        }
        failure = clientError(status.UNAVAILABLE, 'watch stream ended by the server');
        movedOn = this.#servers.failed(conn, failure);
      } catch (err) {
        if (signal?.aborted) return;
        movedOn = this.#servers.failed(conn, err);
        if (!isRetryable(err)) throw err;
        failure = err as ServiceError;
      } finally {
        signal?.removeEventListener('abort', onAbort);
        call.cancel();
      }
      if (failures >= maxRetries) throw failure;
      // A first move to another server is immediate; after that, back off.
      const delay = movedOn && this.#servers.failovers < this.#servers.addresses.length ? 0 : backoffDelay(failures, options.backoff ?? this.#backoff);
      failures++;
      options.onRetry?.(failure, delay);
      if (delay > 0 && !(await sleep(clock, delay, signal))) return;
    }
  }

  /**
   * The raw Heartbeats bidi stream on the current server (see {@link heartbeats} for the
   * batching, windowed wrapper); its failure moves the client to the next server.
   */
  openHeartbeats(): ClientDuplexStream<HeartbeatsRequest, HeartbeatsResponse> {
    const conn = this.#servers.current();
    const call = conn.stub.heartbeats();
    call.on('error', (err: Error) => this.#servers.failed(conn, err));
    call.once('data', () => this.#servers.succeeded(conn));
    return call;
  }

  /**
   * Cancels every instance registered through {@link keepRegistered}, ends the Heartbeats
   * stream and closes the channel; calls in flight fail with CANCELLED or UNAVAILABLE.
   */
  close(): Promise<void> {
    const agents = [...this.#agents];
    const heartbeats = this.#heartbeats;
    if (agents.length === 0 && heartbeats === undefined) {
      this.#servers.close();
      return Promise.resolve();
    }
    return (async () => {
      try {
        await Promise.allSettled(agents.map((agent) => agent.stop()));
        await heartbeats?.close(1_000);
      } finally {
        this.#servers.close();
      }
    })();
  }

  #deadline(opts: CallOpts | undefined, fallbackMs: number): number {
    const deadline = opts?.deadline;
    if (deadline !== undefined) return typeof deadline === 'number' ? deadline : deadline.getTime();
    return Date.now() + (opts?.timeoutMs ?? fallbackMs);
  }

  /**
   * Runs `attempt` on the current server; on UNAVAILABLE moves on and tries again while
   * attempts and the deadline allow. The first move is immediate; once every server has
   * failed, attempts back off (jittered) so a fleet does not retry in step.
   */
  async #withFailover<T>(signal: AbortSignal | undefined, deadline: number, attempt: (conn: Connection) => Promise<T>): Promise<T> {
    for (let n = 1; ; n++) {
      const conn = this.#servers.current();
      try {
        const result = await attempt(conn);
        this.#servers.succeeded(conn);
        return result;
      } catch (err) {
        this.#servers.failed(conn, err);
        if (!isServiceError(err) || err.code !== status.UNAVAILABLE || signal?.aborted || n >= this.#maxAttempts) throw err;
        const round = this.#servers.addresses.length;
        const delay = this.#servers.failovers < round ? 0 : backoffDelay(n - round, this.#backoff);
        if (Date.now() + delay >= deadline) throw err;
        if (delay > 0 && !(await sleep(this.#clock, delay, signal))) throw err;
      }
    }
  }

  #unary<Res>(start: UnaryStart<Res>, opts?: CallOpts): Promise<Res> {
    const signal = opts?.signal;
    const deadline = this.#deadline(opts, this.#timeoutMs);
    return this.#withFailover(
      signal,
      deadline,
      (conn) =>
        new Promise<Res>((resolve, reject) => {
          const onAbort = (): void => call.cancel();
          const call = start(conn.stub, new Metadata(), { deadline }, (err, res) => {
            signal?.removeEventListener('abort', onAbort);
            if (err) reject(err);
            else resolve(res);
          });
          if (signal?.aborted) call.cancel();
          else signal?.addEventListener('abort', onAbort, { once: true });
        }),
    );
  }
}

/** Runs `consume` over a server stream, cancelling the call when `signal` aborts or `consume` throws. */
async function withSignal(call: ClientReadableStream<unknown>, signal: AbortSignal | undefined, consume: () => Promise<void>): Promise<void> {
  const onAbort = (): void => call.cancel();
  if (signal?.aborted) call.cancel();
  else signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await consume();
  } finally {
    signal?.removeEventListener('abort', onAbort);
    call.cancel();
  }
}

/** Adds `authorization: Bearer <token>` to every call's metadata (works over plain text too, unlike call credentials). */
function bearerToken(token: string): Interceptor {
  return (options, next) =>
    new InterceptingCall(next(options), {
      start: (metadata, listener, start) => {
        metadata.set('authorization', `Bearer ${token}`);
        start(metadata, listener);
      },
    });
}
