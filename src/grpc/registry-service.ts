import type { Writable } from 'node:stream';
import { status, type handleUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { RegistryError, invalid, unknownInstance } from '../core/errors.js';
import { reconcileHash } from '../core/registry.js';
import type { Change, HeartbeatOutcome, InstanceRecord, InstanceStatus, InstanceView, RegistryApi } from '../core/types.js';
import { checkApp } from '../core/validate.js';
import { type Instance, InstanceStatus as PbInstanceStatus } from '../gen/roster/v1/instance.js';
import type {
  HeartbeatRequest,
  HeartbeatResponse,
  HeartbeatResult,
  HeartbeatsRequest,
  HeartbeatsResponse,
  ListApplicationsRequest,
  ListApplicationsResponse,
  RegisterResponse,
  RegistryServiceServer,
  WatchRequest,
  WatchResponse,
} from '../gen/roster/v1/registry_service.js';
import { changeToProto, encodedSizeBound, instanceToProto, registrationFromProto, statusFromProto, statusToProto } from './convert.js';
import { toRpcStatus, type RpcStatus } from './errors.js';
import { TokenBucket } from './rate-limit.js';
import { FramedMessage, frameBody, responseEncoding } from './response-compression.js';
import { SnapshotCache, type SnapshotCacheOptions } from './snapshot-cache.js';
import {
  CHANGE_FRAMING_BYTES,
  ChangeEncoder,
  encodeHeartbeatResponse,
  encodeHeartbeatsResponse,
  encodeRegisterResponse,
  encodeWatchResponse,
  watchHeaderBytes,
  type WatchHeader,
} from './write-codec.js';

/** Overload bounds of the client-facing API. */
export interface Limits {
  /** Sustained client writes per second; each heartbeat of a Heartbeats batch counts as one. */
  readonly writesPerSecond: number;
  /** Writes allowed at once above the sustained rate (a fleet renewing together). */
  readonly writeBurst: number;
  /** Concurrent Watch streams; each holds a subscription, a timer and a bounded backlog. */
  readonly maxWatchers: number;
  /** Changes held for a Watch client that stopped reading before it is told to resync. */
  readonly maxWatchBacklog: number;
  /** How often an idle Watch stream gets a progress message. */
  readonly watchProgressIntervalMs: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = {
  writesPerSecond: 50_000,
  writeBurst: 20_000,
  maxWatchers: 10_000,
  maxWatchBacklog: 10_000,
  watchProgressIntervalMs: 10_000,
};

export interface RegistryServiceOptions {
  readonly registry: RegistryApi;
  readonly logger: Logger;
  /** Drives the write rate limit. */
  readonly clock: Clock;
  readonly limits?: Partial<Limits>;
  /** False while the node may not serve reads (start-up sync with peers): they answer UNAVAILABLE. */
  readonly ready?: () => boolean;
  /** This node's id, sent with revisions: a cursor from another node gets resync_required. */
  readonly nodeId?: string;
  /** Bounds of ListApplications' encoded-snapshot cache (byte cap, lease timestamp age). */
  readonly snapshotCache?: Pick<SnapshotCacheOptions, 'maxBytes' | 'maxLeaseAgeMs'>;
  /** Told of every ListApplications read: its answer's encoding, and whether the encoded snapshot was kept already. */
  readonly onFullRead?: (encoding: 'gzip' | 'identity', cached: boolean) => void;
}

/** The RegistryService handlers, plus what shutdown needs to end the long-lived streams. */
export interface RegistryService {
  readonly implementation: RegistryServiceServer;
  /** Open Watch streams. */
  readonly watchers: number;
  /** Ends every open Watch and Heartbeats stream with `status` (at shutdown: UNAVAILABLE, so clients fail over). */
  endStreams(status: RpcStatus): void;
}

// Responses stay under this, well inside the 4 MiB a client accepts by default.
const MESSAGE_BYTES_BUDGET = 3 * 1024 * 1024;
const MAX_BATCH_HEARTBEATS = 1000;
const CHUNK_SIZE = { fallback: 1000, max: 5000 };
const MAX_CHANGES = { fallback: 1000, max: 5000 };
const PAGE_SIZE = { fallback: 1000, max: 5000 };
const WATCH_PAGE = 1000;
/**
 * A Watch message stays under this: a client that stops reading pins at most WATCH_UNFLUSHED
 * messages (plus the HTTP/2 window), so thousands of paused watchers stay bounded.
 */
const WATCH_PAGE_BYTES = 256 * 1024;
/** Watch messages a stream may have in flight to its client (see WatchStream's #write); two absorb a burst while one flushes. */
const WATCH_UNFLUSHED = 2;
const NOT_READY = 'node is starting: not yet synchronised with its peers';

/**
 * Implements roster.v1.RegistryService over the narrow {@link RegistryApi}: converts, rate
 * limits writes, gates reads on readiness and maps every failure through the one error table.
 */
export function createRegistryService(options: RegistryServiceOptions): RegistryService {
  const { registry, logger } = options;
  const limits = checkLimits({ ...DEFAULT_LIMITS, ...options.limits });
  const ready = options.ready ?? (() => true);
  const nodeId = options.nodeId ?? '';
  // Revisions are per node: a cursor another node issued means nothing here.
  const foreign = (cursorNode: string): boolean => cursorNode !== '' && cursorNode !== nodeId;
  const bucket = new TokenBucket({ ratePerSecond: limits.writesPerSecond, burst: limits.writeBurst, clock: options.clock });
  const watchers = new Set<WatchStream>();
  const changeEncoder = new ChangeEncoder();
  const heartbeatStreams = new Set<Writable>();
  const log = (method: string): Logger => logger.child({ method });

  const takeWriteToken = (): void => {
    if (!bucket.tryTake()) throw new RegistryError('resource_exhausted', 'rate limit exceeded');
  };
  const assertReady = (): void => {
    if (!ready()) throw new RegistryError('unavailable', NOT_READY);
  };
  const renew = (hb: HeartbeatRequest): InstanceStatus => {
    takeWriteToken();
    return renewedStatus(registry.heartbeat(hb.app, hb.instanceId, hb.lastDirtyTimestamp, 'client'), hb.app, hb.instanceId);
  };

  const heartbeatsLog = log('Heartbeats');
  const heartbeatResult = (hb: HeartbeatRequest): HeartbeatResult => {
    try {
      return { code: status.OK, message: '', status: statusToProto(renew(hb)) };
    } catch (err) {
      const failure = toRpcStatus(err, heartbeatsLog);
      return { code: failure.code, message: failure.details, status: PbInstanceStatus.INSTANCE_STATUS_UNSPECIFIED };
    }
  };

  const listLog = log('ListApplications');
  const snapshots = new SnapshotCache({
    registry,
    clock: options.clock,
    nodeId,
    chunkSize: CHUNK_SIZE.fallback,
    messageBytes: MESSAGE_BYTES_BUDGET,
    ...options.snapshotCache,
  });
  const sendSnapshot = async (call: ServerWritableStream<ListApplicationsRequest, ListApplicationsResponse>): Promise<void> => {
    assertReady();
    const chunkSize = countParam(call.request.chunkSize, 'chunk_size', CHUNK_SIZE);
    // Undefined when the call is not hooked for framed answers (see response-compression.ts).
    const encoding = responseEncoding(call.metadata);
    const reader = snapshots.open(chunkSize, encoding === 'gzip');
    options.onFullRead?.(encoding ?? 'identity', reader.cached);
    for (;;) {
      if (call.destroyed) return;
      const frame = await reader.next();
      if (frame === undefined) break;
      // Framed bytes pass grpc-js untouched; unhooked, the message bytes pass the serializer (server.ts).
      const message = (encoding === undefined ? frameBody(frame) : new FramedMessage(frame)) as unknown as ListApplicationsResponse;
      if (!call.write(message) && !(await drained(call))) return;
    }
    call.end();
  };

  const watchLog = log('Watch');
  const implementation: RegistryServiceServer = {
    register: unary(log('Register'), (req) => {
      takeWriteToken();
      const registered = registry.register(registrationFromProto(req.instance));
      // Pre-encoded bytes pass the server's serializer untouched (see server.ts).
      return encodeRegisterResponse(registered, req) as unknown as RegisterResponse;
    }),

    // Pre-encoded bytes pass the server's serializer untouched (see server.ts).
    heartbeat: unary(log('Heartbeat'), (req) => encodeHeartbeatResponse(statusToProto(renew(req))) as unknown as HeartbeatResponse),

    heartbeats: (call) => {
      let failed = false;
      let awaitingDrain = false;
      heartbeatStreams.add(call);
      call.once('close', () => heartbeatStreams.delete(call));
      call.on('data', (request: HeartbeatsRequest) => {
        if (failed) return;
        const count = request.heartbeats.length;
        if (count < 1 || count > MAX_BATCH_HEARTBEATS) {
          failed = true;
          failStream(call, invalid('heartbeats', `must hold 1..${MAX_BATCH_HEARTBEATS} heartbeats, got ${count}`), heartbeatsLog);
          return;
        }
        const response = encodeHeartbeatsResponse(request.batchId, request.heartbeats.map(heartbeatResult));
        const written = call.write(response as unknown as HeartbeatsResponse);
        if (!written && !awaitingDrain) {
          awaitingDrain = true;
          call.pause();
          call.once('drain', () => {
            awaitingDrain = false;
            call.resume();
          });
        }
      });
      call.on('end', () => {
        if (!failed) call.end();
      });
    },

    cancel: unary(log('Cancel'), (req) => {
      takeWriteToken();
      return { revision: registry.cancel(req.app, req.instanceId, 'client') };
    }),

    setStatusOverride: unary(log('SetStatusOverride'), (req) => {
      takeWriteToken();
      const forced = statusFromProto(req.status, 'status');
      if (forced === undefined) throw invalid('status', 'is required');
      return { instance: instanceToProto(registry.setStatusOverride(req.app, req.instanceId, forced)) };
    }),

    clearStatusOverride: unary(log('ClearStatusOverride'), (req) => {
      takeWriteToken();
      return { instance: instanceToProto(registry.clearStatusOverride(req.app, req.instanceId)) };
    }),

    updateMetadata: unary(log('UpdateMetadata'), (req) => {
      takeWriteToken();
      return { instance: instanceToProto(registry.updateMetadata(req.app, req.instanceId, { ...req.set }, req.remove)) };
    }),

    getInstance: unary(log('GetInstance'), (req) => {
      assertReady();
      const view = registry.get(req.app, req.instanceId);
      return { instance: instanceToProto(view), revision: registry.revision };
    }),

    listApplications: (call) => {
      sendSnapshot(call).catch((err: unknown) => failStream(call, err, listLog));
    },

    getApplication: unary(log('GetApplication'), (req) => {
      assertReady();
      const { instances, revision } = registry.getApplication(req.app);
      return { app: req.app.toLowerCase(), revision, ...page(instances, req) };
    }),

    listByVip: unary(log('ListByVip'), (req) => {
      assertReady();
      const { instances, revision } = registry.listByVip(req.vip, req.secure);
      return { revision, ...page(instances, req) };
    }),

    getDelta: unary(log('GetDelta'), (req) => {
      assertReady();
      const max = countParam(req.maxChanges, 'max_changes', MAX_CHANGES);
      const delta = foreign(req.nodeId) ? { changes: [], revision: registry.revision, hasMore: false, resyncRequired: true } : registry.delta(req.sinceRevision, max);
      const end = batchEnd(delta.changes, 0, max, (change) => change.instance.record);
      const cut = end < delta.changes.length;
      return {
        changes: delta.changes.slice(0, end).map(changeToProto),
        revision: cut ? delta.changes[end - 1]!.revision : delta.revision,
        hasMore: cut || delta.hasMore,
        resyncRequired: delta.resyncRequired,
        reconcileHash: reconcileHash(registry.stats().byStatus),
        nodeId,
      };
    }),

    watch: (call) => {
      try {
        assertReady();
        if (watchers.size >= limits.maxWatchers) {
          throw new RegistryError('resource_exhausted', `too many watchers (limit ${limits.maxWatchers})`);
        }
        const stream = new WatchStream(call, {
          registry,
          matches: watchFilter(call.request.app, call.request.vip),
          maxBacklog: limits.maxWatchBacklog,
          logger: watchLog,
          nodeId,
          encoder: changeEncoder,
        });
        // Counted until the stream is really gone: a watcher told to resync still holds its
        // buffered answers until its client reads them or goes away.
        watchers.add(stream);
        call.once('close', () => watchers.delete(stream));
        stream.start(call.request.sinceRevision, limits.watchProgressIntervalMs, call.request.sinceRevision !== undefined && foreign(call.request.nodeId));
      } catch (err) {
        failStream(call, err, watchLog);
      }
    },
  };

  return {
    implementation,
    get watchers() {
      return watchers.size;
    },
    endStreams(end: RpcStatus): void {
      for (const stream of [...watchers]) stream.end(end);
      for (const call of [...heartbeatStreams]) if (!call.destroyed && !call.writableEnded) call.emit('error', end);
      heartbeatStreams.clear();
    },
  };
}

/** Refuses settings that would disable a bound; only maxWatchers may be 0 (Watch turned off). */
function checkLimits(limits: Limits): Limits {
  for (const [name, value] of Object.entries(limits)) {
    const min = name === 'maxWatchers' ? 0 : 1;
    if (!Number.isFinite(value) || value < min) throw new RangeError(`limit ${name} must be at least ${min}, got ${value}`);
  }
  return limits;
}

function unary<Req, Res>(logger: Logger, handle: (request: Req) => Res): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    let response: Res;
    try {
      response = handle(call.request);
    } catch (err) {
      callback(toRpcStatus(err, logger));
      return;
    }
    callback(null, response);
  };
}

/** Fails a stream with the mapped status, unless it is already over. */
function failStream(call: Writable, err: unknown, logger: Logger): void {
  const failure = toRpcStatus(err, logger);
  if (!call.destroyed && !call.writableEnded) call.emit('error', failure);
}

/** Resolves true when `call` drains, false when it closes first (cancelled or over). */
function drained(call: Writable): Promise<boolean> {
  return new Promise((resolve) => {
    const settle = (open: boolean) => (): void => {
      call.off('drain', onDrain);
      call.off('close', onClose);
      resolve(open);
    };
    const onDrain = settle(true);
    const onClose = settle(false);
    call.once('drain', onDrain);
    call.once('close', onClose);
  });
}

/**
 * One page of a sorted (app, instance_id) list: after the token's key, at most `page_size`
 * instances (0: no count limit) within the message budget. The token is the last key sent, so
 * a page is right even when instances came or went in between.
 */
function page(instances: readonly InstanceView[], req: { pageSize: number; pageToken: string }): { instances: Instance[]; nextPageToken: string } {
  const size = req.pageSize === 0 ? Number.MAX_SAFE_INTEGER : countParam(req.pageSize, 'page_size', PAGE_SIZE);
  const start = req.pageToken === '' ? 0 : firstAfter(instances, decodePageToken(req.pageToken));
  const end = batchEnd(instances, start, size, (view) => view.record);
  const last = instances[end - 1];
  return {
    instances: instances.slice(start, end).map(instanceToProto),
    nextPageToken: end < instances.length && last ? Buffer.from(JSON.stringify([last.record.app, last.record.instanceId])).toString('base64url') : '',
  };
}

function decodePageToken(token: string): [string, string] {
  try {
    const key: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (Array.isArray(key) && key.length === 2 && typeof key[0] === 'string' && typeof key[1] === 'string') return [key[0], key[1]];
  } catch {
    // Reported below.
  }
  throw invalid('page_token', 'is not a token from an earlier answer');
}

/** Index of the first instance whose (app, instance_id) sorts after `key` (binary search). */
function firstAfter(instances: readonly InstanceView[], [app, id]: [string, string]): number {
  let lo = 0;
  let hi = instances.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const r = instances[mid]!.record;
    if (r.app < app || (r.app === app && r.instanceId <= id)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A count from a request: 0 takes the default, above the maximum is refused naming `field`. */
function countParam(value: number, field: string, bounds: { fallback: number; max: number }): number {
  if (value === 0) return bounds.fallback;
  if (value > bounds.max) throw invalid(field, `must be 1..${bounds.max} (0 for ${bounds.fallback})`);
  return value;
}

/** End (exclusive) of the message starting at `start`: at most `maxCount` items within the byte budget, never empty. */
function batchEnd<T>(items: readonly T[], start: number, maxCount: number, recordOf: (item: T) => InstanceRecord, budget = MESSAGE_BYTES_BUDGET): number {
  let end = start;
  let bytes = 0;
  while (end < items.length && end - start < maxCount) {
    bytes += encodedSizeBound(recordOf(items[end]!));
    if (bytes > budget && end > start) break;
    end++;
  }
  return end;
}

const NOT_FOUND_WHY: Readonly<Record<Extract<HeartbeatOutcome, { kind: 'not_found' }>['reason'], string>> = {
  unknown: 'is not registered',
  expired: 'lease has expired: register again',
  status_unknown: 'status is UNKNOWN: register again',
  caller_newer: "caller's record is newer than the stored one: register again",
};

function renewedStatus(outcome: HeartbeatOutcome, app: string, instanceId: string): InstanceStatus {
  switch (outcome.kind) {
    case 'ok':
      return outcome.status;
    // Only replication origins get conflicts; a client keeps OK and the stored status.
    case 'conflict':
      return outcome.record.status;
    case 'not_found':
      if (outcome.reason === 'unknown') throw unknownInstance(app, instanceId);
      throw new RegistryError('not_found', `instance ${app}/${instanceId}: ${NOT_FOUND_WHY[outcome.reason]}`);
  }
}

/** Watch's filters: app case-insensitive, VIP against either comma-separated list, trimmed. */
function watchFilter(app: string, vip: string): (change: Change) => boolean {
  const wantedApp = app === '' ? undefined : checkApp(app);
  const wantedVip = vip.trim().toLowerCase();
  return (change) => {
    const r = change.instance.record;
    if (wantedApp !== undefined && r.app !== wantedApp) return false;
    return wantedVip === '' || vipListHas(r.vipAddress, wantedVip) || vipListHas(r.secureVipAddress, wantedVip);
  };
}

function vipListHas(list: string, vip: string): boolean {
  return list.split(',').some((entry) => entry.trim().toLowerCase() === vip);
}

interface WatchDeps {
  readonly registry: RegistryApi;
  readonly matches: (change: Change) => boolean;
  readonly maxBacklog: number;
  readonly logger: Logger;
  readonly nodeId: string;
  readonly encoder: ChangeEncoder;
}

/**
 * One Watch stream. Subscribes first, replays the change log from the cursor a page at a
 * time as the client reads, then switches to live changes in the same synchronous step as
 * the last replayed page, so every revision is handled exactly once. `#cursor` is the
 * revision the watcher is at once `#queue` (matching changes not yet written) is out.
 */
class WatchStream {
  readonly #call: ServerWritableStream<WatchRequest, WatchResponse>;
  readonly #deps: WatchDeps;
  #cursor = 0;
  #live = false;
  #queue: Change[] = [];
  #blocked = false;
  /** Messages written whose bytes have not left for the client yet. */
  #unflushed = 0;
  #closed = false;
  #sentSinceTick = false;
  #pumpSoon: NodeJS.Immediate | undefined;
  #unsubscribe: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(call: ServerWritableStream<WatchRequest, WatchResponse>, deps: WatchDeps) {
    this.#call = call;
    this.#deps = deps;
  }

  start(since: number | undefined, progressIntervalMs: number, foreignCursor: boolean): void {
    this.#call.once('close', () => this.#close());
    if (foreignCursor) return this.#resync();
    this.#unsubscribe = this.#deps.registry.subscribe((change) => this.#onChange(change));
    this.#timer = setInterval(() => this.#tick(), progressIntervalMs);
    this.#timer.unref();
    if (since === undefined) {
      this.#cursor = this.#deps.registry.revision;
      this.#live = true;
      this.#write([], { revision: this.#cursor, progress: true, resyncRequired: false });
    } else {
      this.#cursor = since;
      this.#pump();
    }
  }

  /** Ends the stream with `status` (shutdown, or a failure while streaming). */
  end(status: RpcStatus): void {
    if (this.#closed) return;
    this.#close();
    if (!this.#call.destroyed && !this.#call.writableEnded) this.#call.emit('error', status);
  }

  #onChange(change: Change): void {
    if (this.#closed || !this.#live || change.revision <= this.#cursor) return;
    this.#cursor = change.revision;
    if (!this.#deps.matches(change)) return;
    this.#queue.push(change);
    if (this.#blocked) {
      if (this.#queue.length > this.#deps.maxBacklog) this.#resync();
      return;
    }
    this.#pumpSoon ??= setImmediate(this.#pumpLater);
  }

  /** Made once, not per change or message: each closure was garbage of its own. */
  readonly #pumpLater = (): void => {
    this.#pumpSoon = undefined;
    this.#pump();
  };

  readonly #flushed = (): void => {
    this.#unflushed--;
    if (!this.#blocked) return;
    this.#blocked = false;
    this.#pump();
  };

  #pump(): void {
    try {
      while (!this.#closed && !this.#blocked) {
        if (this.#queue.length === 0) {
          if (this.#live || !this.#replayPage()) return;
          continue;
        }
        const { changes, last } = this.#takePage();
        const revision = this.#queue.length === 0 ? this.#cursor : last.revision;
        this.#write(changes, { revision, progress: false, resyncRequired: false });
      }
      if (this.#queue.length > this.#deps.maxBacklog) this.#resync();
    } catch (err) {
      this.end(toRpcStatus(err, this.#deps.logger));
    }
  }

  /** Queues the next page of the change log; false when the stream ended instead (resync). */
  #replayPage(): boolean {
    // A page never exceeds the backlog bound, so a replay alone cannot trigger a resync.
    const delta = this.#deps.registry.delta(this.#cursor, Math.min(WATCH_PAGE, this.#deps.maxBacklog));
    if (delta.resyncRequired) {
      this.#resync();
      return false;
    }
    for (const change of delta.changes) if (this.#deps.matches(change)) this.#queue.push(change);
    this.#cursor = delta.revision;
    if (!delta.hasMore) this.#live = true;
    return true;
  }

  /**
   * Takes the next page of the queue, encoded: at most {@link WATCH_PAGE} changes, and within
   * {@link WATCH_PAGE_BYTES} once framed in a message, never empty. Cut by the encoded bytes,
   * which every change needs anyway (shared by the turn's watchers), not by a size bound per
   * record: the bound read every field once more, a fifth of a live stream's CPU at 2,000 changes/s.
   */
  #takePage(): { changes: Buffer[]; last: Change } {
    const queue = this.#queue;
    const changes: Buffer[] = [];
    let bytes = watchHeaderBytes(this.#deps.nodeId);
    while (changes.length < queue.length && changes.length < WATCH_PAGE) {
      const encoded = this.#deps.encoder.bytes(queue[changes.length]!);
      bytes += encoded.length + CHANGE_FRAMING_BYTES;
      if (bytes > WATCH_PAGE_BYTES && changes.length > 0) break;
      changes.push(encoded);
    }
    const last = queue[changes.length - 1]!;
    if (changes.length === queue.length) queue.length = 0;
    else queue.splice(0, changes.length);
    return { changes, last };
  }

  /**
   * Writes one message; blocks while {@link WATCH_UNFLUSHED} have not left for the client.
   * The port's HTTP/2 completes a write only once it fits the client's flow-control window, so a
   * paused client pins that many messages, not the 16 a stream buffers before `write()`
   * reports it full (with 16, 300 paused watchers exhausted a 256 MB heap: test/grpc/heap-limit.test.ts).
   * Pre-encoded bytes pass the server's serializer untouched (see server.ts).
   */
  #write(changes: readonly Buffer[], header: Omit<WatchHeader, 'nodeId'>): void {
    this.#sentSinceTick = true;
    if (++this.#unflushed >= WATCH_UNFLUSHED) this.#blocked = true;
    const bytes = encodeWatchResponse(changes, { ...header, nodeId: this.#deps.nodeId });
    this.#call.write(bytes as unknown as WatchResponse, this.#flushed);
  }

  #tick(): void {
    if (this.#closed || this.#blocked || !this.#live || this.#queue.length > 0) return;
    if (this.#sentSinceTick) {
      this.#sentSinceTick = false;
      return;
    }
    this.#write([], { revision: this.#cursor, progress: true, resyncRequired: false });
    this.#sentSinceTick = false;
  }

  #resync(): void {
    if (this.#closed) return;
    const revision = this.#deps.registry.revision;
    this.#deps.logger.debug({ cursor: this.#cursor, revision, backlog: this.#queue.length }, 'watch needs resync');
    this.#close();
    if (this.#call.destroyed || this.#call.writableEnded) return;
    this.#call.write({ changes: [], revision, progress: false, resyncRequired: true, nodeId: this.#deps.nodeId });
    this.#call.end();
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.#unsubscribe?.();
    clearInterval(this.#timer);
    if (this.#pumpSoon) clearImmediate(this.#pumpSoon);
  }
}
