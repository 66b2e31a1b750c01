import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Change, InstanceRecord, RegistryApi } from '../core/types.js';
import { encodeResource, encodeResponseBody, TYPE_URL, type EncodedResource, type ResourceKind } from './protos.js';
import { clusterJson, listenerJson, loadAssignmentJson, routeJson, targetKey } from './resources.js';

/** A response shared by the streams subscribed to the same names. */
export interface CachedResponse {
  readonly version: string;
  /** Resources in it. */
  readonly count: number;
  /** The encoded DiscoveryResponse without its nonce. */
  readonly body: Buffer;
}

/** Bounds the response memo; it is rebuilt on demand, so clearing it costs only time. */
const MAX_CACHED_RESPONSES = 10_000;

/** A stream's interest in a resource: told when the resource's content changes. */
export interface ResourceWatcher {
  /** `changedAt` is the `performance.now()` of the registry change that caused it. */
  resourcesChanged(kind: ResourceKind, changedAt: number): void;
}

interface Entry {
  readonly kind: ResourceKind;
  readonly name: string;
  readonly key: string;
  resource: EncodedResource;
  readonly watchers: Set<ResourceWatcher>;
  /** Endpoint entries only: the `app/id` of every instance the resource was built from. */
  members: Set<string>;
}

/**
 * The encoded xDS resources every stream of a node shares, kept only for names some stream
 * watches. Listener, route and cluster resources depend on the name alone; load assignments
 * follow the registry's change feed: changes are coalesced per event-loop turn, the affected
 * assignments rebuilt once, and the watchers of those that changed are told.
 */
export class XdsResourceCache {
  readonly #registry: RegistryApi;
  readonly #log: Logger;
  readonly #entries = new Map<string, Entry>();
  /** Target key (app or VIP) → endpoint entries built for it. */
  readonly #byKey = new Map<string, Set<Entry>>();
  /** `app/id` → endpoint entries holding that instance. */
  readonly #byMember = new Map<string, Set<Entry>>();
  /** Responses by (kind, sorted names), valid until a resource changes: streams with the same subscription share one. */
  readonly #responses = new Map<string, CachedResponse>();
  #pending: Change[] = [];
  #pendingSince = 0;
  #flushScheduled = false;
  readonly #unsubscribe: () => void;

  constructor(options: { registry: RegistryApi; logger: Logger }) {
    this.#registry = options.registry;
    this.#log = options.logger;
    this.#unsubscribe = this.#registry.subscribe((change) => this.#onChange(change));
  }

  /** The current resource, or undefined when `name` cannot name one (it does not exist). */
  get(kind: ResourceKind, name: string): EncodedResource | undefined {
    const entry = this.#entries.get(entryId(kind, name));
    if (entry) return entry.resource;
    const key = targetKey(name);
    return key === undefined ? undefined : this.#build(kind, name, key, new Set()).resource;
  }

  /** Starts telling `watcher` about changes of (kind, name); a no-op for a name that cannot exist. */
  watch(kind: ResourceKind, name: string, watcher: ResourceWatcher): void {
    const id = entryId(kind, name);
    let entry = this.#entries.get(id);
    if (!entry) {
      const key = targetKey(name);
      if (key === undefined) return;
      const members = new Set<string>();
      entry = { kind, name, key, members, watchers: new Set(), resource: this.#build(kind, name, key, members).resource };
      this.#entries.set(id, entry);
      // Memoised responses may hold an older build of this name (from before it was watched).
      this.#responses.clear();
      if (kind === 'endpoint') this.#index(entry);
    }
    entry.watchers.add(watcher);
  }

  unwatch(kind: ResourceKind, name: string, watcher: ResourceWatcher): void {
    const id = entryId(kind, name);
    const entry = this.#entries.get(id);
    if (!entry) return;
    entry.watchers.delete(watcher);
    if (entry.watchers.size > 0) return;
    this.#entries.delete(id);
    if (entry.kind === 'endpoint') this.#unindex(entry);
  }

  /**
   * The response body (without nonce) holding every existing resource of `sortedNames`, and
   * its version: a digest of the names and versions of those resources.
   */
  response(kind: ResourceKind, sortedNames: readonly string[]): CachedResponse {
    const key = `${kind}\n${sortedNames.join('\n')}`;
    const cached = this.#responses.get(key);
    if (cached) return cached;
    const resources: EncodedResource[] = [];
    for (const name of sortedNames) {
      const resource = this.get(kind, name);
      if (resource) resources.push(resource);
    }
    const hash = createHash('sha1');
    for (const r of resources) hash.update(r.name).update('\n').update(r.version).update('\n');
    const version = hash.digest('base64url').slice(0, 16);
    const response = { version, count: resources.length, body: encodeResponseBody(TYPE_URL[kind], version, resources) };
    if (this.#responses.size >= MAX_CACHED_RESPONSES) this.#responses.clear();
    this.#responses.set(key, response);
    return response;
  }

  /** Names currently watched, per kind (for metrics and tests). */
  get size(): number {
    return this.#entries.size;
  }

  close(): void {
    this.#unsubscribe();
    this.#entries.clear();
    this.#responses.clear();
    this.#byKey.clear();
    this.#byMember.clear();
    this.#pending = [];
  }

  #onChange(change: Change): void {
    if (this.#byKey.size === 0) return;
    if (this.#pending.length === 0) this.#pendingSince = performance.now();
    this.#pending.push(change);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // Called inside the registry's write: defer the rebuild so the write returns at once,
    // and so a burst of changes costs one rebuild per assignment.
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    const changes = this.#pending;
    const since = this.#pendingSince;
    this.#pending = [];
    const affected = new Set<Entry>();
    for (const { instance } of changes) {
      const record = instance.record;
      for (const key of keysOf(record)) for (const entry of this.#byKey.get(key) ?? []) affected.add(entry);
      for (const entry of this.#byMember.get(memberId(record)) ?? []) affected.add(entry);
    }
    const notify = new Set<ResourceWatcher>();
    for (const entry of affected) {
      if (!this.#entries.has(entryId(entry.kind, entry.name))) continue;
      this.#unindex(entry);
      const members = new Set<string>();
      const { resource } = this.#build(entry.kind, entry.name, entry.key, members);
      entry.members = members;
      this.#index(entry);
      if (resource.version === entry.resource.version) continue;
      entry.resource = resource;
      this.#responses.clear();
      for (const w of entry.watchers) notify.add(w);
    }
    for (const watcher of notify) {
      try {
        watcher.resourcesChanged('endpoint', since);
      } catch (err) {
        this.#log.error({ err }, 'xds watcher failed');
      }
    }
  }

  #build(kind: ResourceKind, name: string, key: string, members: Set<string>): { resource: EncodedResource } {
    let json: Parameters<typeof encodeResource>[1];
    switch (kind) {
      case 'listener':
        json = listenerJson(name);
        break;
      case 'route':
        json = routeJson(name, key);
        break;
      case 'cluster':
        json = clusterJson(name, key);
        break;
      case 'endpoint': {
        const records = this.#instancesOf(key);
        for (const r of records) members.add(memberId(r));
        json = loadAssignmentJson(name, records);
        break;
      }
    }
    const bytes = encodeResource(kind, json);
    return { resource: { name, version: createHash('sha1').update(bytes).digest('base64url').slice(0, 16), bytes } };
  }

  /** The instances of application `key` and those listing `key` among their VIPs. */
  #instancesOf(key: string): InstanceRecord[] {
    const byId = new Map<string, InstanceRecord>();
    for (const view of this.#registry.getApplication(key).instances) byId.set(memberId(view.record), view.record);
    for (const view of this.#registry.listByVip(key, false).instances) byId.set(memberId(view.record), view.record);
    return [...byId.values()];
  }

  #index(entry: Entry): void {
    addTo(this.#byKey, entry.key, entry);
    for (const m of entry.members) addTo(this.#byMember, m, entry);
  }

  #unindex(entry: Entry): void {
    removeFrom(this.#byKey, entry.key, entry);
    for (const m of entry.members) removeFrom(this.#byMember, m, entry);
  }
}

function entryId(kind: ResourceKind, name: string): string {
  return `${kind}\n${name}`;
}

function memberId(record: InstanceRecord): string {
  return `${record.app}/${record.instanceId}`;
}

/** The target keys a record belongs to: its app and each of its (plain) VIPs. */
function keysOf(record: InstanceRecord): string[] {
  const keys = [record.app];
  for (const vip of record.vipAddress.split(',')) {
    const v = vip.trim().toLowerCase();
    if (v.length > 0) keys.push(v);
  }
  return keys;
}

function addTo<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(value);
}

function removeFrom<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}
