import {
  credentials as grpcCredentials,
  Metadata,
  status,
  type CallOptions,
  type ChannelCredentials,
  type ClientDuplexStream,
  type ClientOptions,
  type ClientReadableStream,
  type ClientUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import { SystemClock, type Clock } from '../core/clock.js';
import { Instance, type DeepPartial, type InstanceStatus } from '../gen/roster/v1/instance.js';
import {
  ListApplicationsRequest,
  RegistryServiceClient,
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
import { clientError, isRetryable } from './errors.js';
import { decodeListChunk } from './wire.js';

/** Per-call options. `deadline` (epoch ms or Date) wins over `timeoutMs`. */
export interface CallOpts {
  readonly signal?: AbortSignal;
  readonly deadline?: Date | number;
  readonly timeoutMs?: number;
}

/** How to reach a node; every field has a default. */
export interface RosterClientOptions {
  /** Defaults to insecure (plain text), as Roster serves on a private network or via a mesh. */
  readonly credentials?: ChannelCredentials;
  /** Extra channel options; `grpc.per_rpc_retry_buffer_size` is forced to 0: grpc-js copies its retry buffer per message, which makes fast client streams quadratic (~1.6k instead of ~100k small messages/s). */
  readonly channelOptions?: Partial<ClientOptions>;
  /** Deadline of unary calls without their own (default 10 s). */
  readonly timeoutMs?: number;
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

type UnaryStart<Res> = (
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (err: ServiceError | null, res: Res) => void,
) => ClientUnaryCall;

/**
 * A promise-based client for roster.v1.RegistryService over the generated grpc-js stub.
 * Requests and responses are the generated message types; failures reject with the grpc-js
 * ServiceError (code, details, metadata) unchanged. Aborting a call's signal cancels it (CANCELLED).
 */
export class RosterClient {
  readonly #stub: RegistryServiceClient;
  readonly #timeoutMs: number;

  constructor(address: string, options: RosterClientOptions = {}) {
    this.#stub = new RegistryServiceClient(address, options.credentials ?? grpcCredentials.createInsecure(), {
      // HTTP/2's default 64 KiB window makes a large snapshot wait on window updates every
      // 64 KiB; 8 MiB roughly halved a 100k-instance read here (BENCHMARKS.md).
      'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW_BYTES,
      ...options.channelOptions,
      'grpc.per_rpc_retry_buffer_size': 0,
    });
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Stores or replaces `instance`; `app` and `instanceId` are required by the server. */
  register(instance: DeepPartial<Instance>, opts?: CallOpts): Promise<RegisterResponse> {
    const request = { instance: Instance.fromPartial(instance) };
    return this.#unary((m, o, cb) => this.#stub.register(request, m, o, cb), opts);
  }

  /** Renews a lease. NOT_FOUND means "register again" (see the proto). */
  heartbeat(app: string, instanceId: string, lastDirtyTimestamp = 0, opts?: CallOpts): Promise<HeartbeatResponse> {
    const request = { app, instanceId, lastDirtyTimestamp };
    return this.#unary((m, o, cb) => this.#stub.heartbeat(request, m, o, cb), opts);
  }

  /** Removes an instance that is shutting down. */
  cancel(app: string, instanceId: string, opts?: CallOpts): Promise<CancelResponse> {
    return this.#unary((m, o, cb) => this.#stub.cancel({ app, instanceId }, m, o, cb), opts);
  }

  /** Forces an instance's status (operator action) until cleared. */
  setStatusOverride(app: string, instanceId: string, status: InstanceStatus, opts?: CallOpts): Promise<SetStatusOverrideResponse> {
    return this.#unary((m, o, cb) => this.#stub.setStatusOverride({ app, instanceId, status }, m, o, cb), opts);
  }

  /** Removes the override; the instance's next heartbeat gets NOT_FOUND and it re-registers. */
  clearStatusOverride(app: string, instanceId: string, opts?: CallOpts): Promise<ClearStatusOverrideResponse> {
    return this.#unary((m, o, cb) => this.#stub.clearStatusOverride({ app, instanceId }, m, o, cb), opts);
  }

  /** Removes `remove`, then sets `set`. */
  updateMetadata(
    app: string,
    instanceId: string,
    set: Readonly<Record<string, string>>,
    remove: readonly string[] = [],
    opts?: CallOpts,
  ): Promise<UpdateMetadataResponse> {
    const request = { app, instanceId, set: { ...set }, remove: [...remove] };
    return this.#unary((m, o, cb) => this.#stub.updateMetadata(request, m, o, cb), opts);
  }

  /** One instance; NOT_FOUND when unknown. */
  getInstance(app: string, instanceId: string, opts?: CallOpts): Promise<GetInstanceResponse> {
    return this.#unary((m, o, cb) => this.#stub.getInstance({ app, instanceId }, m, o, cb), opts);
  }

  /** An application's instances, every page of them; an unknown app has none (not an error). */
  async getApplication(app: string, opts?: CallOpts): Promise<GetApplicationResponse> {
    const first = await this.#unary<GetApplicationResponse>((m, o, cb) => this.#stub.getApplication({ app, pageSize: 0, pageToken: '' }, m, o, cb), opts);
    for (let token = first.nextPageToken; token !== ''; ) {
      const next = await this.#unary<GetApplicationResponse>((m, o, cb) => this.#stub.getApplication({ app, pageSize: 0, pageToken: token }, m, o, cb), opts);
      first.instances.push(...next.instances);
      token = next.nextPageToken;
    }
    return { ...first, nextPageToken: '' };
  }

  /** Instances serving `vip` (its secure VIPs when `secure`), every page of them. */
  async listByVip(vip: string, secure = false, opts?: CallOpts): Promise<ListByVipResponse> {
    const first = await this.#unary<ListByVipResponse>((m, o, cb) => this.#stub.listByVip({ vip, secure, pageSize: 0, pageToken: '' }, m, o, cb), opts);
    for (let token = first.nextPageToken; token !== ''; ) {
      const next = await this.#unary<ListByVipResponse>((m, o, cb) => this.#stub.listByVip({ vip, secure, pageSize: 0, pageToken: token }, m, o, cb), opts);
      first.instances.push(...next.instances);
      token = next.nextPageToken;
    }
    return { ...first, nextPageToken: '' };
  }

  /** Changes after `sinceRevision`; follow `hasMore`, and on `resyncRequired` list again. */
  getDelta(sinceRevision: number, maxChanges = 0, opts?: CallOpts & { readonly nodeId?: string }): Promise<GetDeltaResponse> {
    const nodeId = opts?.nodeId ?? '';
    return this.#unary((m, o, cb) => this.#stub.getDelta({ sinceRevision, maxChanges, nodeId }, m, o, cb), opts);
  }

  /**
   * The whole registry, collected from the ListApplications stream. Every chunk must carry the
   * same revision and the total must match, or the snapshot is refused (DATA_LOSS).
   */
  async listApplications(opts: CallOpts & { readonly chunkSize?: number } = {}): Promise<ApplicationsSnapshot> {
    // The generated method with a faster decoder for the one large answer (see wire.ts).
    const call = this.#stub.makeServerStreamRequest(
      LIST_APPLICATIONS_PATH,
      (request: ListApplicationsRequest) => Buffer.from(ListApplicationsRequest.encode(request).finish()),
      decodeListChunk,
      { chunkSize: opts.chunkSize ?? 0 },
      { deadline: this.#deadline(opts, SNAPSHOT_TIMEOUT_MS) },
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
  }

  /**
   * Live changes as an async iterable. After a stream error it reconnects from the last revision
   * it delivered (exponential backoff with jitter), so the caller sees no gap and no repeat. A
   * message with `resyncRequired` is delivered and ends the iteration: list again, then watch
   * from the snapshot's revision. Permanent errors (e.g. INVALID_ARGUMENT) are thrown at once.
   */
  async *watch(filter: WatchFilter = {}, options: WatchOptions = {}): AsyncGenerator<WatchResponse, void, undefined> {
    const { signal } = options;
    const clock = options.clock ?? new SystemClock();
    const maxRetries = options.maxRetries ?? 20;
    let sinceRevision = filter.sinceRevision;
    let nodeId = filter.nodeId ?? '';
    let failures = 0;
    while (!signal?.aborted) {
      // The cursor travels with the node that issued it: reconnecting to another node (behind a
      // load balancer) then yields resync_required instead of a silent gap.
      const call = this.#stub.watch({ app: filter.app ?? '', vip: filter.vip ?? '', sinceRevision, nodeId });
      const onAbort = (): void => call.cancel();
      signal?.addEventListener('abort', onAbort, { once: true });
      let failure: ServiceError | undefined;
      try {
        for await (const message of call as AsyncIterable<WatchResponse>) {
          failures = 0;
          sinceRevision = message.revision;
          nodeId = message.nodeId;
          yield message;
          if (message.resyncRequired) return;
        }
        failure = clientError(status.UNAVAILABLE, 'watch stream ended by the server');
      } catch (err) {
        if (signal?.aborted) return;
        if (!isRetryable(err)) throw err;
        failure = err as ServiceError;
      } finally {
        signal?.removeEventListener('abort', onAbort);
        call.cancel();
      }
      if (failures >= maxRetries) throw failure;
      const delay = backoffDelay(failures++, options.backoff);
      options.onRetry?.(failure, delay);
      if (!(await sleep(clock, delay, signal))) return;
    }
  }

  /** The raw Heartbeats bidi stream (see HeartbeatStream for the batching, windowed wrapper). */
  openHeartbeats(): ClientDuplexStream<HeartbeatsRequest, HeartbeatsResponse> {
    return this.#stub.heartbeats();
  }

  /** Closes the channel; calls in flight fail with CANCELLED or UNAVAILABLE. */
  close(): void {
    this.#stub.close();
  }

  #deadline(opts: CallOpts | undefined, fallbackMs: number): Date | number {
    return opts?.deadline ?? Date.now() + (opts?.timeoutMs ?? fallbackMs);
  }

  #unary<Res>(start: UnaryStart<Res>, opts?: CallOpts): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      const signal = opts?.signal;
      const onAbort = (): void => call.cancel();
      const call = start(new Metadata(), { deadline: this.#deadline(opts, this.#timeoutMs) }, (err, res) => {
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(res);
      });
      if (signal?.aborted) call.cancel();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** Runs `consume` over a server stream, cancelling the call when `signal` aborts or `consume` throws. */
async function withSignal(
  call: ClientReadableStream<unknown>,
  signal: AbortSignal | undefined,
  consume: () => Promise<void>,
): Promise<void> {
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
