import { EventEmitter } from 'node:events';
import { isDeepStrictEqual } from 'node:util';
import { pino, type Logger } from 'pino';
import { SystemClock, type Clock } from '../core/clock.js';
import { ChangeType, InstanceStatus, type Instance } from '../gen/roster/v1/instance.js';
import { backoffDelay, sleep, type BackoffOptions } from './backoff.js';
import type { RosterClient } from './roster-client.js';

/** What changed in the cache: an instance added, modified (with its previous record) or deleted. */
export type CacheChange =
  | { readonly type: 'added'; readonly instance: Instance }
  | { readonly type: 'modified'; readonly instance: Instance; readonly previous: Instance }
  | { readonly type: 'deleted'; readonly instance: Instance };

/** Events of a {@link DiscoveryCache}. */
export interface DiscoveryEvents {
  /** One instance changed (after a resync, one event per difference from the old view). */
  change: [CacheChange];
  /** A snapshot replaced the view: at start, after resync_required, after failover. */
  resync: [{ readonly revision: number; readonly nodeId: string; readonly instances: number }];
  /** Listing or watching failed; the cache keeps its view and retries. */
  error: [Error];
}

export interface DiscoveryCacheOptions {
  /** Only this application (the snapshot is filtered, the watch asks the server for this app only). */
  readonly app?: string;
  /** The caller's zone: {@link DiscoveryCache.pick} prefers UP instances of this zone. */
  readonly zone?: string;
  readonly clock?: Clock;
  readonly backoff?: BackoffOptions;
  readonly logger?: Logger;
}

const key = (app: string, instanceId: string): string => `${app}/${instanceId}`;

/**
 * A local view of the registry fed by Watch: a snapshot (ListApplications), then the changes
 * from its revision. When the server cannot continue the history (resync_required: cursor too
 * old, the node restarted, or the client failed over to another node) it lists again and emits
 * the differences, so listeners see one consistent stream of changes whatever happened.
 * Reads (`instances`, `pick`) never block: they answer from the last view.
 */
export class DiscoveryCache extends EventEmitter<DiscoveryEvents> {
  readonly #client: RosterClient;
  readonly #options: DiscoveryCacheOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #abort = new AbortController();
  /** app → instance id → record. */
  readonly #apps = new Map<string, Map<string, Instance>>();
  readonly #cursors = new Map<string, number>();
  #revision = 0;
  #nodeId = '';
  #resyncs = 0;
  #pass: AbortController | undefined;
  #loop: Promise<void> | undefined;
  #ready: Promise<void>;
  #markReady: () => void = () => {};

  constructor(client: RosterClient, options: DiscoveryCacheOptions = {}) {
    super();
    this.#client = client;
    this.#options = { ...options, ...(options.app ? { app: options.app.toLowerCase() } : {}) };
    this.#clock = options.clock ?? new SystemClock();
    this.#log = (options.logger ?? pino({ enabled: false })).child({ component: 'discovery-cache', ...(options.app ? { app: options.app } : {}) });
    this.#ready = new Promise((resolve) => (this.#markReady = resolve));
  }

  /** Starts following the registry; resolves once the first snapshot is in. */
  start(): Promise<void> {
    this.#loop ??= this.#run();
    return this.#ready;
  }

  /** The revision (of {@link nodeId}'s history) the view reflects. */
  get revision(): number {
    return this.#revision;
  }

  /** The node whose history the view follows; changes after a failover. */
  get nodeId(): string {
    return this.#nodeId;
  }

  /** Snapshots taken so far (the first one included). */
  get resyncs(): number {
    return this.#resyncs;
  }

  /** Every instance of `app` (any status), sorted by instance id. */
  instances(app: string): Instance[] {
    const byId = this.#apps.get(app.toLowerCase());
    return byId === undefined ? [] : [...byId.values()].sort((a, b) => (a.instanceId < b.instanceId ? -1 : 1));
  }

  /** Every instance in the view, sorted by app then id. */
  all(): Instance[] {
    return [...this.#apps.keys()].sort().flatMap((app) => this.instances(app));
  }

  /** Instances whose VIP list (comma-separated) names `vip`; `secure` reads the secure VIPs. */
  byVip(vip: string, secure = false): Instance[] {
    const wanted = vip.toLowerCase();
    return this.all().filter((i) => (secure ? i.secureVipAddress : i.vipAddress).split(',').some((v) => v.trim().toLowerCase() === wanted));
  }

  /**
   * The next UP instance of `app`, round-robin. With a zone (the option, or `zone` here), UP
   * instances of that zone come first; other zones serve only when none there is UP.
   * Undefined when no instance is UP.
   */
  pick(app: string, zone = this.#options.zone): Instance | undefined {
    const up = this.instances(app).filter((i) => i.status === InstanceStatus.INSTANCE_STATUS_UP);
    const local = zone ? up.filter((i) => i.zone === zone) : [];
    const pool = local.length > 0 ? local : up;
    if (pool.length === 0) return undefined;
    const cursorKey = `${app.toLowerCase()}|${local.length > 0 ? zone : ''}`;
    const next = this.#cursors.get(cursorKey) ?? 0;
    this.#cursors.set(cursorKey, next + 1);
    return pool[next % pool.length];
  }

  /** Throws the view away at the next step and lists again (what resync_required does). */
  resync(): void {
    this.#pass?.abort();
  }

  /** Stops following; the last view stays readable. */
  async close(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    let failures = 0;
    while (!signal.aborted) {
      const pass = new AbortController();
      this.#pass = pass;
      const stop = (): void => pass.abort();
      signal.addEventListener('abort', stop, { once: true });
      try {
        const snapshot = await this.#client.listApplications({ signal: pass.signal });
        this.#replace(snapshot.instances, snapshot.revision, snapshot.nodeId);
        failures = 0;
        const filter = { app: this.#options.app ?? '', sinceRevision: snapshot.revision, nodeId: snapshot.nodeId };
        for await (const message of this.#client.watch(filter, { signal: pass.signal, clock: this.#clock })) {
          if (message.resyncRequired) {
            this.#log.info({ revision: this.#revision, nodeId: this.#nodeId, server: message.nodeId }, 'resync required; listing again');
            break;
          }
          for (const change of message.changes) this.#apply(change.type, change.instance);
          this.#revision = message.revision;
          this.#nodeId = message.nodeId;
        }
      } catch (err) {
        if (signal.aborted) break;
        if (!pass.signal.aborted) {
          const error = err instanceof Error ? err : new Error(String(err));
          this.#log.warn({ err: error, failures }, 'discovery failed; retrying');
          if (this.listenerCount('error') > 0) this.emit('error', error);
          if (!(await sleep(this.#clock, backoffDelay(failures++, this.#options.backoff), signal))) break;
        }
      } finally {
        signal.removeEventListener('abort', stop);
      }
    }
  }

  /** Replaces the view by a snapshot and emits the differences. */
  #replace(instances: readonly Instance[], revision: number, nodeId: string): void {
    const wanted = this.#options.app;
    const next = new Map<string, Instance>();
    for (const i of instances) if (wanted === undefined || i.app === wanted) next.set(key(i.app, i.instanceId), i);
    for (const byId of [...this.#apps.values()]) {
      for (const old of [...byId.values()]) if (!next.has(key(old.app, old.instanceId))) this.#apply(ChangeType.CHANGE_TYPE_DELETED, old);
    }
    for (const i of next.values()) this.#apply(ChangeType.CHANGE_TYPE_MODIFIED, i);
    this.#revision = revision;
    this.#nodeId = nodeId;
    this.#resyncs++;
    this.emit('resync', { revision, nodeId, instances: next.size });
    this.#markReady();
  }

  /** ADDED/MODIFIED store the record; any other kind (DELETED, and removals added later) removes it. */
  #apply(type: ChangeType, instance: Instance | undefined): void {
    if (instance === undefined) return;
    let byId = this.#apps.get(instance.app);
    const previous = byId?.get(instance.instanceId);
    if (type === ChangeType.CHANGE_TYPE_ADDED || type === ChangeType.CHANGE_TYPE_MODIFIED) {
      if (previous !== undefined && sameRecord(previous, instance)) return;
      if (byId === undefined) this.#apps.set(instance.app, (byId = new Map()));
      byId.set(instance.instanceId, instance);
      this.emit('change', previous === undefined ? { type: 'added', instance } : { type: 'modified', instance, previous });
    } else if (previous !== undefined && byId !== undefined) {
      byId.delete(instance.instanceId);
      if (byId.size === 0) this.#apps.delete(instance.app);
      this.emit('change', { type: 'deleted', instance: previous });
    }
  }
}

/**
 * Same content as far as consumers care: lease times and last_updated_timestamp are node-local
 * (they differ between nodes and move on renewals), so a resync on another node emits only
 * real differences.
 */
function sameRecord(a: Instance, b: Instance): boolean {
  return isDeepStrictEqual({ ...a, lease: undefined, lastUpdatedTimestamp: 0 }, { ...b, lease: undefined, lastUpdatedTimestamp: 0 });
}
