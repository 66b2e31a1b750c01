import type { Logger } from 'pino';
import { ChangeLog } from './change-log.js';
import { Entry, recordFields, type VersionFields } from './entry.js';
import type { Clock, TimerHandle } from './clock.js';
import { invalid, RegistryError, unknownInstance } from './errors.js';
import { StringPool } from './intern.js';
import { LeaseTable } from './lease-table.js';
import { ExpectedRenewals } from './expected-renewals.js';
import { SlidingCounter } from './sliding-counter.js';
import { reportedStatusOf, resolveStatus } from './status-rules.js';
import {
  STATUSES,
  type Change,
  type ChangeType,
  type RemovalCause,
  type Delta,
  type HeartbeatOutcome,
  type InstanceRecord,
  type InstanceStatus,
  type InstanceView,
  type LocalWrite,
  type Registered,
  type RegistrationInput,
  type RegistryApi,
  type RegistryStats,
  type Snapshot,
  type WriteOrigin,
} from './types.js';
import { checkApp, checkDirtyTimestamp, checkInstanceId, checkMetadata, checkRegistration, checkStatus } from './validate.js';
import { compareVersions, contentHash, type ContentFields } from './version.js';

export interface RegistryOptions {
  clock: Clock;
  logger?: Logger;
  /** Default renewal interval for registrations that omit it (Eureka: 30 s). */
  leaseRenewalSecs?: number;
  /** Default lease duration for registrations that omit it (Eureka: 90 s). */
  leaseDurationSecs?: number;
  /** Self-preservation needs renewals in the last minute below this share of expected (85). */
  renewalThresholdPercent?: number;
  /**
   * Self-preservation also needs at least this many lapsed instances (expired and still held,
   * plus evicted in the last minute), so a small registry evicts a dead instance at expiry (10).
   */
  selfPreservationMinLapsed?: number;
  /** Self-preservation stays on (or off) at least this long after switching: no flapping (60 s). */
  selfPreservationHoldMs?: number;
  /**
   * Most of the registry eviction may take per sliding minute (15). The cap never goes below
   * {@link selfPreservationMinLapsed}, so it only ever slows a mass expiry.
   */
  evictionCapPercent?: number;
  selfPreservation?: boolean;
  /** A client's `last_dirty_timestamp` may be at most this far ahead of the node's wall clock (1 day). */
  maxClockSkewMs?: number;
  /** How often expired leases are looked for. */
  evictionIntervalMs?: number;
  /** Changes kept for GetDelta and Watch resumption. */
  changeLogSize?: number;
  /** How long a removed instance is remembered so stale copies cannot resurrect it. */
  tombstoneTtlMs?: number;
  /** At most this many tombstones; past it the oldest are forgotten first (memory stays bounded under mass churn). */
  maxTombstones?: number;
  /**
   * How long a lease last renewed through a peer this node cannot hear from is kept past its
   * expiry (120 s): its renewals may be reaching that peer and not us (a one-way cut).
   */
  peerHoldMs?: number;
  /** Client registrations of new instances beyond this many are refused RESOURCE_EXHAUSTED (1,000,000). */
  maxInstances?: number;
  /** The same, per application (100,000). */
  maxInstancesPerApp?: number;
  /** Metadata keys and values of all instances together, in UTF-16 code units (256 Mi). */
  maxMetadataBytes?: number;
  /** Source of randomness for choosing which expired instances to evict first. */
  random?: () => number;
  /**
   * Whether this node exchanges digests with peers (it has peers configured). Digests are made
   * of each version's content hash, so such a node hashes every version as it stores it. A
   * standalone node hashes a version only when a tie on its dirty timestamp needs the hash, or
   * when a peer asks it for a digest after all: that first digest hashes what is still
   * unhashed, once, and from then on the node hashes as it stores (false).
   */
  digests?: boolean;
  /** Receives every client write once applied, for replication. */
  onLocalWrite?: (write: LocalWrite) => void;
}

/** A removed instance, remembered for a while (see {@link RegistryOptions.tombstoneTtlMs}). */
export interface Tombstone {
  readonly app: string;
  readonly instanceId: string;
  readonly lastDirtyTimestamp: number;
  /** An explicit cancel (true) or a local lease eviction (false). */
  readonly cancelled: boolean;
  readonly expiresAt: number;
}

/** The outcome of applying a peer's record. */
export type ApplyOutcome = 'applied' | 'renewed' | 'stale';

const MINUTE_MS = 60_000;
/** Healed peers are forgotten after this (far longer than any renewal interval). */
const HEALED_PEER_MEMORY_MS = 10 * 60_000;
/** Renewal rates and the eviction cap are measured over this sliding window. */
const WINDOW_MS = MINUTE_MS;

/**
 * Evictions per slice of a pass before yielding to the event loop: each costs some
 * microseconds (maps, heap, change log, Watch listeners), so a slice stays a few milliseconds.
 */
const EVICTION_SLICE = 1000;
/**
 * A slice also ends after this long, whatever it got through: on a busy or starved node an
 * eviction (with its listeners) can cost far more than usual, and the event loop must not
 * stall for it (the bound is 100 ms; this leaves room for what else runs in the turn).
 */
const EVICTION_SLICE_MS = 10;

const key = (app: string, instanceId: string): string => `${app}/${instanceId}`;

/** The lease table's hash of a version stored without one (hashes are 53-bit, never negative). */
const UNHASHED = -1;

// Heartbeat outcomes without a record are shared: a node renews tens of thousands of leases a second.
const RENEWED = Object.freeze(Object.fromEntries(STATUSES.map((status) => [status, Object.freeze({ kind: 'ok', status })]))) as Readonly<Record<InstanceStatus, HeartbeatOutcome>>;
const NOT_FOUND = Object.freeze({
  unknown: Object.freeze({ kind: 'not_found', reason: 'unknown' }),
  expired: Object.freeze({ kind: 'not_found', reason: 'expired' }),
  status_unknown: Object.freeze({ kind: 'not_found', reason: 'status_unknown' }),
  caller_newer: Object.freeze({ kind: 'not_found', reason: 'caller_newer' }),
} as const);

/** Counts per status as "STATUS_count_" in status order: Eureka's reconcile hash format. */
export function reconcileHash(byStatus: Readonly<Record<InstanceStatus, number>>): string {
  let out = '';
  for (const status of [...STATUSES].sort()) {
    if (byStatus[status] > 0) out += `${status}_${byStatus[status]}_`;
  }
  return out;
}

/**
 * The registry of one node: records, leases in a deadline heap, eviction with
 * self-preservation, a revision counter and a bounded change log. No I/O; time comes from
 * the injected clock and side effects leave through `onLocalWrite` and subscribers.
 */
export class Registry implements RegistryApi {
  readonly #clock: Clock;
  readonly #log: Logger | undefined;
  readonly #opts: Required<Omit<RegistryOptions, 'clock' | 'logger' | 'onLocalWrite' | 'digests'>>;
  /** Whether versions are hashed as they are stored (see {@link RegistryOptions.digests}). */
  #hashing: boolean;
  readonly #onLocalWrite: ((write: LocalWrite) => void) | undefined;
  readonly #apps = new Map<string, Map<string, Entry>>();
  readonly #leases = new LeaseTable<Entry>();
  readonly #strings = new StringPool();
  /**
   * An app's entries in instance-id order, kept up to date by every write (a binary search; a
   * splice for an instance that comes or goes, while the app holds at most
   * {@link KEEP_SORTED_MAX}); a larger app's list is dropped when instances come or go and
   * sorted again on its next read. So a snapshot copies lists instead of sorting a million ids
   * and looking each up (220-270 ms at 1M: a stall of every full read). Renewals change no entry.
   */
  readonly #sortedByApp = new Map<string, Entry[]>();
  /**
   * Sorted lists a snapshot holds: an app's next write copies its list before changing it, so
   * a snapshot costs one step per app instead of copying every entry (~30 ms at 1M, a stall
   * of every full read), and a reader walks it while writes go on.
   */
  readonly #lent = new Set<Entry[]>();
  /** App names in sorted order, dropped when an app appears or disappears. */
  #sortedApps: string[] | undefined;
  readonly #tombstones = new Map<string, Tombstone>();
  readonly #changes: ChangeLog;
  readonly #listeners = new Set<(change: Change) => void>();
  readonly #byStatus: Record<InstanceStatus, number> = { UP: 0, DOWN: 0, STARTING: 0, OUT_OF_SERVICE: 0, UNKNOWN: 0 };
  #size = 0;
  #metadataBytes = 0;
  /** Peers this node cannot hear from, since when (monotonic). */
  readonly #unreachablePeers = new Map<string, number>();
  /** Peers heard from again, since when (monotonic): their held leases get one renewal interval. */
  readonly #healedPeers = new Map<string, number>();
  /** Expired leases kept at the last pass because their renewals come through an unreachable peer. */
  #heldForPeers = 0;
  /** Client writes refused because a capacity limit was reached, by limit. */
  readonly #capacityRefusals = { instances: 0, instances_per_app: 0, metadata_bytes: 0 };
  #revision = 0;
  /** Renewals (and registrations, which prove life as well) over the sliding minute. */
  readonly #renewals = new SlidingCounter(WINDOW_MS / 1000);
  readonly #expected = new ExpectedRenewals(WINDOW_MS);
  /** Monotonic times of the evictions in the sliding minute, oldest first from `#recentHead` (for the cap). */
  #recentEvictions: number[] = [];
  #recentHead = 0;
  /** Expired instances still registered at the last eviction pass (held or over the cap). */
  #pendingExpired = 0;
  /** The cap is logged once per window, not on every pass. */
  #capLoggedAt = -Infinity;
  #evictionsTotal = 0;
  #selfPreservation = false;
  #selfPreservationSince = -Infinity;
  #timer: TimerHandle | undefined;

  constructor(options: RegistryOptions) {
    this.#clock = options.clock;
    this.#log = options.logger?.child({ component: 'registry' });
    this.#onLocalWrite = options.onLocalWrite;
    this.#opts = {
      leaseRenewalSecs: options.leaseRenewalSecs ?? 30,
      leaseDurationSecs: options.leaseDurationSecs ?? 90,
      renewalThresholdPercent: options.renewalThresholdPercent ?? 85,
      selfPreservationMinLapsed: options.selfPreservationMinLapsed ?? 10,
      selfPreservationHoldMs: options.selfPreservationHoldMs ?? MINUTE_MS,
      evictionCapPercent: options.evictionCapPercent ?? 15,
      selfPreservation: options.selfPreservation ?? true,
      maxClockSkewMs: options.maxClockSkewMs ?? 24 * 60 * MINUTE_MS,
      evictionIntervalMs: options.evictionIntervalMs ?? 1000,
      changeLogSize: options.changeLogSize ?? 100_000,
      tombstoneTtlMs: options.tombstoneTtlMs ?? 15 * MINUTE_MS,
      maxTombstones: options.maxTombstones ?? 200_000,
      peerHoldMs: options.peerHoldMs ?? 2 * MINUTE_MS,
      maxInstances: options.maxInstances ?? 1_000_000,
      maxInstancesPerApp: options.maxInstancesPerApp ?? 100_000,
      maxMetadataBytes: options.maxMetadataBytes ?? 256 * 1024 * 1024,
      random: options.random ?? Math.random,
    };
    this.#hashing = options.digests ?? false;
    this.#changes = new ChangeLog(this.#opts.changeLogSize);
  }

  /** Starts the eviction loop on the clock (every `evictionIntervalMs`, from the first one on). */
  start(): void {
    if (this.#timer !== undefined) return;
    const evictLoop = (): void => {
      this.#evictExpired(() => {
        this.#timer = this.#clock.setTimeout(evictLoop, this.#opts.evictionIntervalMs);
      });
    };
    this.#timer = this.#clock.setTimeout(evictLoop, this.#opts.evictionIntervalMs);
  }

  stop(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  get revision(): number {
    return this.#revision;
  }

  get oldestReplayableRevision(): number {
    return this.#changes.oldestReplayable(this.#revision);
  }

  register(input: RegistrationInput): Registered {
    const checked = checkRegistration(input, {
      renewalIntervalSecs: this.#opts.leaseRenewalSecs,
      durationSecs: this.#opts.leaseDurationSecs,
    });
    // One reading of each clock per call: each costs ~70 ns, and a Register read them six times.
    const wall = this.#clock.wallNow();
    this.#checkSkew(checked.lastDirtyTimestamp, 'instance.last_dirty_timestamp', wall);
    const existing = this.#entry(checked.app, checked.instanceId);
    let dirty = checked.lastDirtyTimestamp || wall;
    // A cancelled version must stay dead on every peer: a client coming back with an old
    // version gets a newer one, so its replicated register beats the peers' tombstones.
    const tomb = this.#tombstone(checked.app, checked.instanceId);
    if (tomb?.cancelled && tomb.lastDirtyTimestamp >= dirty) dirty = tomb.lastDirtyTimestamp + 1;

    const version: VersionFields = {
      status: resolveStatus(checked.status, existing?.record.overriddenStatus, existing?.record.status),
      overriddenStatus: existing?.record.overriddenStatus,
      lastDirtyTimestamp: dirty,
      lastUpdatedTimestamp: wall,
    };
    const candidate = this.#build(checked, version);
    const { hash, order } = this.#against(existing, candidate, checked, version);
    if (existing && order <= 0) {
      // The stored record is as new or newer: it wins, the caller still gets OK and a lease.
      this.#renew(existing, undefined, wall);
      this.#emitLocal({ action: 'heartbeat', app: checked.app, instanceId: checked.instanceId, lastDirtyTimestamp: existing.record.lastDirtyTimestamp });
      return { view: existing, revision: this.#revision, kept: order < 0 };
    }
    this.#checkCapacity(candidate, existing?.record);
    const entry = this.#store(candidate, hash, existing, candidate.durationSecs * 1000, wall);
    this.#leases.setRenewedVia(entry.slot, undefined);
    this.#emitLocal({ action: 'register', record: candidate });
    // Guarded: the fields object would be built on every write even with debug off.
    if (this.#log?.isLevelEnabled('debug')) this.#log.debug({ app: candidate.app, instanceId: candidate.instanceId, status: candidate.status }, 'registered');
    return { view: entry, revision: this.#revision, kept: false };
  }

  heartbeat(app: string, instanceId: string, lastDirtyTimestamp = 0, origin: WriteOrigin = 'client', via?: string): HeartbeatOutcome {
    app = checkApp(app);
    checkInstanceId(instanceId);
    checkDirtyTimestamp(lastDirtyTimestamp);
    const wall = this.#clock.wallNow();
    if (origin === 'client') this.#checkSkew(lastDirtyTimestamp, 'last_dirty_timestamp', wall);
    const entry = this.#entry(app, instanceId);
    if (!entry) return NOT_FOUND.unknown;
    const now = this.#clock.now();
    if (now >= this.#leases.deadline(entry.slot)) return NOT_FOUND.expired;
    if (entry.record.status === 'UNKNOWN') return NOT_FOUND.status_unknown;
    if (lastDirtyTimestamp > entry.record.lastDirtyTimestamp) return NOT_FOUND.caller_newer;
    this.#renew(entry, via, wall, now);
    if (origin === 'client') {
      this.#emitLocal({ action: 'heartbeat', app, instanceId, lastDirtyTimestamp: entry.record.lastDirtyTimestamp });
    } else if (lastDirtyTimestamp > 0 && lastDirtyTimestamp < entry.record.lastDirtyTimestamp) {
      return { kind: 'conflict', record: entry.record };
    }
    return RENEWED[entry.record.status];
  }

  cancel(app: string, instanceId: string, origin: WriteOrigin = 'client', lastDirtyTimestamp = 0): number {
    app = checkApp(app);
    checkInstanceId(instanceId);
    checkDirtyTimestamp(lastDirtyTimestamp);
    const entry = this.#entry(app, instanceId);
    if (origin === 'client') {
      if (!entry) throw unknownInstance(app, instanceId);
      // A cancel is a write like any other: it gets a version, and the newest write wins.
      const version = Math.max(this.#clock.wallNow(), entry.record.lastDirtyTimestamp + 1);
      this.#remove(entry, version);
      this.#emitLocal({ action: 'cancel', app, instanceId, lastDirtyTimestamp: version });
      return this.#revision;
    }
    if (entry && entry.record.lastDirtyTimestamp > lastDirtyTimestamp) return this.#revision;
    if (entry) this.#remove(entry, lastDirtyTimestamp);
    else this.#bury(app, instanceId, lastDirtyTimestamp, true);
    return this.#revision;
  }

  setStatusOverride(app: string, instanceId: string, status: InstanceStatus): InstanceView {
    checkStatus(status, 'status');
    if (status === 'UNKNOWN') throw invalid('status', 'UNKNOWN cannot be forced: use ClearStatusOverride');
    // The rule chain decides, not the last operation: an instance reporting DOWN stays DOWN.
    return this.#update(app, instanceId, (r) => ({
      overriddenStatus: status,
      status: resolveStatus(reportedStatusOf(r), status, r.status),
    }));
  }

  clearStatusOverride(app: string, instanceId: string): InstanceView {
    return this.#update(app, instanceId, (r) => (r.overriddenStatus === undefined ? undefined : { overriddenStatus: undefined, status: 'UNKNOWN' }));
  }

  updateMetadata(app: string, instanceId: string, set: Readonly<Record<string, string>>, remove: readonly string[]): InstanceView {
    checkMetadata(set, 'set');
    return this.#update(app, instanceId, (r) => {
      const metadata: Record<string, string> = { ...r.metadata };
      for (const k of remove) delete metadata[k];
      Object.assign(metadata, set);
      checkMetadata(metadata, 'set');
      return { metadata };
    });
  }

  /**
   * Applies a record from a peer (replicated register, conflict answer, snapshot, digest
   * pull): newer versions replace, equal ones renew the lease, older ones and versions at or
   * below a cancel tombstone are ignored. Never produces a local write.
   */
  applyRecord(record: InstanceRecord, leaseRemainingMs?: number, via?: string): ApplyOutcome {
    const checked = checkRegistration(record, { renewalIntervalSecs: 0, durationSecs: 0 });
    const { app, instanceId } = checked;
    if (record.overriddenStatus !== undefined) checkStatus(record.overriddenStatus, 'instance.overridden_status');
    const remaining = leaseRemainingMs ?? record.durationSecs * 1000;
    if (remaining <= 0) return 'stale';
    const tomb = this.#tombstone(app, instanceId);
    if (tomb?.cancelled && tomb.lastDirtyTimestamp >= record.lastDirtyTimestamp) return 'stale';
    const wall = this.#clock.wallNow();
    const version: VersionFields = {
      status: record.status,
      overriddenStatus: record.overriddenStatus,
      lastDirtyTimestamp: record.lastDirtyTimestamp,
      lastUpdatedTimestamp: wall,
    };
    const incoming = this.#build(checked, version);
    const existing = this.#entry(app, instanceId);
    const { hash, order } = this.#against(existing, incoming, checked, version);
    if (order < 0) return 'stale';
    if (order === 0 && existing) {
      const slot = existing.slot;
      this.#leases.setDeadline(slot, Math.max(this.#leases.deadline(slot), this.#clock.now() + remaining));
      this.#leases.setLastRenewalTimestamp(slot, wall);
      this.#leases.setRenewedVia(slot, via);
      return 'renewed';
    }
    this.#leases.setRenewedVia(this.#store(incoming, hash, existing, remaining, wall).slot, via);
    return 'applied';
  }

  /**
   * A new version's content hash, and how it orders against the stored one (positive: newer;
   * 1 when nothing is stored). An unchanged re-registration (the common case) is the stored
   * version: its hash, and no ordering to do. Otherwise it is hashed from the registration
   * (the built entry's getters build strings). A node that is not hashing as it stores leaves
   * the hash {@link UNHASHED} unless the dirty timestamps tie, when the hashes order the two.
   */
  #against(existing: Entry | undefined, built: Entry, checked: ContentFields, version: VersionFields): { hash: number; order: number } {
    if (existing === undefined) return { hash: this.#hashing ? contentHash(checked, version) : UNHASHED, order: 1 };
    if (existing.sameContentAs(built)) return { hash: existing.hash, order: 0 };
    const newer = built.lastDirtyTimestamp - existing.lastDirtyTimestamp;
    if (newer !== 0 && !this.#hashing) return { hash: UNHASHED, order: newer };
    const hash = contentHash(checked, version);
    return { hash, order: compareVersions(built, hash, existing.record, this.#hashOf(existing)) };
  }

  /** A stored version's content hash, computed now if it was stored without one (see {@link RegistryOptions.digests}). */
  #hashOf(entry: Entry): number {
    let hash = entry.hash;
    if (hash === UNHASHED) {
      // From the stored fields: the getters build the host, address and URL strings, which
      // hash as the registration's did (the stored form keeps each value exactly).
      hash = contentHash(entry, entry);
      this.#leases.setHash(entry.slot, hash);
    }
    return hash;
  }

  /** The version of a live instance, for replication. */
  record(app: string, instanceId: string): InstanceRecord | undefined {
    return this.#entry(app.toLowerCase(), instanceId)?.record;
  }

  /**
   * Per app: live count and an order-independent hash of (id, version, content), so two nodes
   * can find the apps where they differ without shipping every record.
   */
  digest(): Map<string, { count: number; hash: string }> {
    const out = new Map<string, { count: number; hash: string }>();
    for (const [app, entries] of this.#apps) {
      let lo = 0;
      let hi = 0;
      for (const e of entries.values()) {
        const hash = this.#hashOf(e);
        lo ^= hash >>> 0;
        hi ^= Math.floor(hash / 4294967296);
      }
      out.set(app, { count: entries.size, hash: `${(hi >>> 0).toString(16)}.${(lo >>> 0).toString(16)}` });
    }
    // Every stored version has its hash now: keep it so, digests come again.
    this.#hashing = true;
    return out;
  }

  /** Live records of the given apps (all when empty) with their lease remaining, for peers. */
  records(apps: readonly string[] = []): { record: InstanceRecord; leaseRemainingMs: number }[] {
    return [...this.iterateRecords(apps)];
  }

  /**
   * The same as {@link records}, one at a time, so a snapshot of a large registry is never
   * materialised whole. App names are deduplicated (case-insensitively).
   */
  *iterateRecords(apps: readonly string[] = []): Generator<{ record: InstanceRecord; leaseRemainingMs: number }> {
    const names = apps.length > 0 ? new Set(apps.map((a) => a.toLowerCase())) : [...this.#apps.keys()];
    for (const app of names) {
      for (const e of this.#apps.get(app)?.values() ?? []) {
        yield { record: e.record, leaseRemainingMs: this.#leases.deadline(e.slot) - this.#clock.now() };
      }
    }
  }

  /** Live tombstones, for snapshots and anti-entropy. */
  tombstones(): Tombstone[] {
    return [...this.#tombstones.values()];
  }

  /** Remembers a removal learnt from a peer (snapshot or digest pull). */
  applyTombstone(t: Pick<Tombstone, 'app' | 'instanceId' | 'lastDirtyTimestamp' | 'cancelled'>): void {
    if (!t.cancelled) return;
    this.cancel(t.app, t.instanceId, 'replication', t.lastDirtyTimestamp);
  }

  get(app: string, instanceId: string): InstanceView {
    app = checkApp(app);
    checkInstanceId(instanceId);
    const entry = this.#entry(app, instanceId);
    if (!entry) throw unknownInstance(app, instanceId);
    return entry;
  }

  getApplication(app: string): { instances: readonly InstanceView[]; revision: number } {
    app = checkApp(app);
    // A copy: the kept list changes with the app's next write.
    return { instances: this.#apps.has(app) ? [...this.#appSorted(app)] : [], revision: this.#revision };
  }

  findById(instanceId: string): InstanceView[] {
    checkInstanceId(instanceId);
    const out: Entry[] = [];
    for (const entries of this.#apps.values()) {
      const entry = entries.get(instanceId);
      if (entry) out.push(entry);
    }
    return out.sort((a, b) => (a.record.app < b.record.app ? -1 : a.record.app > b.record.app ? 1 : 0));
  }

  listByVip(vip: string, secure: boolean): { instances: readonly InstanceView[]; revision: number } {
    const wanted = vip.trim();
    if (wanted.length === 0) throw invalid('vip', 'is required');
    const instances: InstanceView[] = [];
    for (const entry of this.#sortedEntries()) {
      const list = secure ? entry.record.secureVipAddress : entry.record.vipAddress;
      if (vipListHas(list, wanted)) instances.push(entry);
    }
    return { instances, revision: this.#revision };
  }

  snapshot(): Snapshot {
    this.#sortedApps ??= [...this.#apps.keys()].sort();
    const apps: Entry[][] = [];
    for (const app of this.#sortedApps) {
      const entries = this.#appSorted(app);
      this.#lent.add(entries);
      apps.push(entries);
    }
    let instances: readonly Entry[] | undefined;
    return {
      revision: this.#revision,
      reconcileHash: reconcileHash(this.#byStatus),
      apps,
      get instances() {
        return (instances ??= apps.flat());
      },
    };
  }

  delta(since: number, max: number): Delta {
    const changes = since > this.#revision ? undefined : this.#changes.after(since, max, this.#revision);
    if (!changes) return { changes: [], revision: this.#revision, hasMore: false, resyncRequired: true };
    const revision = changes.at(-1)?.revision ?? this.#revision;
    return { changes, revision, hasMore: revision < this.#revision, resyncRequired: false };
  }

  subscribe(listener: (change: Change) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Counters for metrics and health; O(1), so any request may ask. */
  stats(): RegistryStats {
    const now = this.#clock.now();
    return {
      size: this.#size,
      byStatus: { ...this.#byStatus },
      renewalsLastMinute: this.#renewals.count(now),
      expectedRenewalsPerMinute: Math.round(this.#expectedRenewals(now) * 100) / 100,
      lapsedInstances: this.#lapsed(now),
      selfPreservation: this.#selfPreservation,
      evictionsTotal: this.#evictionsTotal,
      revision: this.#revision,
      metadataBytes: this.#metadataBytes,
      heldForUnreachablePeers: this.#heldForPeers,
      unreachablePeers: this.#unreachablePeers.size,
      capacityRefusals: { ...this.#capacityRefusals },
    };
  }

  /**
   * Tells the registry whether this node currently hears from `peer` (its incoming replication
   * stream is open). Leases last renewed through a peer it cannot hear from are not evicted for
   * up to `peerHoldMs`: their renewals may be reaching that peer and not this node.
   */
  setPeerReachable(peer: string, reachable: boolean): void {
    const now = this.#clock.now();
    if (reachable) {
      if (this.#unreachablePeers.delete(peer)) this.#healedPeers.set(peer, now);
    } else if (!this.#unreachablePeers.has(peer)) {
      this.#unreachablePeers.set(peer, now);
    }
  }

  /** Expired leases less those held for an unreachable peer (they stay expired in the heap for the next pass). */
  #holdForUnreachablePeers(due: number[], now: number): number[] {
    for (const [peer, at] of this.#healedPeers) if (now - at > HEALED_PEER_MEMORY_MS) this.#healedPeers.delete(peer);
    if (this.#unreachablePeers.size === 0 && this.#healedPeers.size === 0) {
      this.#heldForPeers = 0;
      return due;
    }
    const evictable: number[] = [];
    let held = 0;
    for (const slot of due) {
      if (this.#leases.renewedVia(slot) !== undefined && this.#peerMayBeRenewing(slot, now)) held++;
      else evictable.push(slot);
    }
    if (held > 0 && this.#heldForPeers === 0) {
      this.#log?.warn({ held, peers: [...this.#unreachablePeers.keys()] }, 'holding expired leases renewed through peers this node cannot hear from');
    }
    this.#heldForPeers = held;
    return evictable;
  }

  /**
   * Whether renewals of the lease in `slot` may still be on their way through its peer: the peer is
   * unreachable (for up to `peerHoldMs`), or was heard from again less than one renewal
   * interval ago (its backlog of heartbeats is still arriving).
   */
  #peerMayBeRenewing(slot: number, now: number): boolean {
    const via = this.#leases.renewedVia(slot)!;
    const since = this.#unreachablePeers.get(via);
    if (since !== undefined) return now - since < this.#opts.peerHoldMs;
    const healedAt = this.#healedPeers.get(via);
    if (healedAt === undefined) return false;
    const interval = this.#leases.owner(slot).record.renewalIntervalSecs * 1000;
    return now - healedAt < interval;
  }

  /**
   * One eviction pass (every `evictionIntervalMs`): expired leases are removed unless
   * self-preservation holds them; a mass expiry is spread by the cap (a random choice of at
   * most 15 % of the registry per sliding minute). The removals run in slices of
   * {@link EVICTION_SLICE} or {@link EVICTION_SLICE_MS}, yielding to the event loop between them
   * (100k evictions in one go blocked a node for seconds), and the pass ends with one summary
   * log line. `done` runs when the pass is over. Also forgets old tombstones.
   */
  #evictExpired(done: () => void): void {
    const started = this.#clock.now();
    const now = started;
    // Tombstones sit in the map in expiry order (each is re-inserted when renewed). A mass
    // eviction's tombstones all expire together: a bounded number go per pass, the rest next time.
    let forgotten = 0;
    for (const [k, t] of this.#tombstones) {
      if (t.expiresAt > now || forgotten++ >= EVICTION_SLICE * 10) break;
      this.#tombstones.delete(k);
    }
    this.#trimRecentEvictions(now);
    // Expired leases stay in the heap until removed: a heartbeat meanwhile gets NOT_FOUND.
    const due = this.#holdForUnreachablePeers(this.#leases.collectDue(now), now);
    this.#pendingExpired = due.length;
    if (due.length > 0 || this.#selfPreservation) this.#assessSelfPreservation(now);
    const take = this.#selfPreservation ? 0 : Math.min(due.length, this.#evictionBudget());
    if (take < due.length) {
      // Partial Fisher–Yates: the first `take` leases become a uniform random choice.
      for (let i = 0; i < take; i++) {
        const j = i + Math.floor(this.#opts.random() * (due.length - i));
        [due[i], due[j]] = [due[j]!, due[i]!];
      }
      if (!this.#selfPreservation && now - this.#capLoggedAt >= WINDOW_MS) {
        this.#capLoggedAt = now;
        this.#log?.warn({ expired: due.length, evicting: take, capPercent: this.#opts.evictionCapPercent }, 'mass expiry: eviction capped per minute');
      }
    }
    if (take === 0) {
      done();
      return;
    }
    const apps = new Set<string>();
    let evicted = 0;
    let slices = 0;
    let longestSliceMs = 0;
    let next = 0;
    const slice = (): void => {
      this.#timer = undefined;
      slices++;
      const sliceStart = this.#clock.now();
      const end = Math.min(take, next + EVICTION_SLICE);
      for (; next < end && this.#clock.now() - sliceStart < EVICTION_SLICE_MS; next++) {
        const slot = due[next]!;
        // Renewed by a (re-)registration, or removed (its slot perhaps reused) since the pass began.
        if (!this.#leases.scheduled(slot) || this.#leases.deadline(slot) > now) continue;
        const entry = this.#leases.owner(slot);
        this.#remove(entry, undefined);
        this.#evictionsTotal++;
        this.#recentEvictions.push(now);
        this.#pendingExpired--;
        apps.add(entry.record.app);
        evicted++;
      }
      longestSliceMs = Math.max(longestSliceMs, this.#clock.now() - sliceStart);
      if (next < take) {
        this.#timer = this.#clock.setTimeout(slice, 0);
        return;
      }
      if (evicted > 0) {
        const fields = {
          evicted,
          apps: apps.size,
          expired: due.length,
          held: this.#heldForPeers,
          slices,
          longestSliceMs: Math.round(longestSliceMs),
          ms: Math.round(this.#clock.now() - started),
        };
        this.#log?.info(fields, 'evicted expired leases');
      }
      done();
    };
    slice();
  }

  #trimRecentEvictions(now: number): void {
    const times = this.#recentEvictions;
    while (this.#recentHead < times.length && times[this.#recentHead]! <= now - WINDOW_MS) this.#recentHead++;
    if (this.#recentHead > 1024 && this.#recentHead * 2 > times.length) {
      this.#recentEvictions = times.slice(this.#recentHead);
      this.#recentHead = 0;
    }
  }

  /** Evictions in the sliding minute (after {@link #trimRecentEvictions}). */
  get #recentCount(): number {
    return this.#recentEvictions.length - this.#recentHead;
  }

  /**
   * Evictions still allowed in the sliding minute: the cap share of the registry as it was
   * at the window's start, never less than the self-preservation minimum (fewer lapsed
   * instances than that is not a mass expiry, so a lone one is never delayed).
   */
  #evictionBudget(): number {
    const recent = this.#recentCount;
    const share = Math.floor(((this.#size + recent) * this.#opts.evictionCapPercent) / 100);
    return Math.max(0, Math.max(share, this.#opts.selfPreservationMinLapsed) - recent);
  }

  /** Lapsed instances: expired and still registered, plus those evicted in the sliding minute. */
  #lapsed(now: number): number {
    this.#trimRecentEvictions(now);
    return this.#pendingExpired + this.#recentCount;
  }

  /**
   * Renewals the registered instances should have sent over the sliding minute: each counts
   * only for the part of the window since it registered on this node, so a fleet that
   * registers mid-minute is not "missing" renewals it never owed. O(1): see ExpectedRenewals.
   */
  #expectedRenewals(now: number): number {
    return this.#expected.at(now);
  }

  /**
   * Self-preservation holds when renewals fall below the threshold share of expected AND the
   * lapsed instances number at least the configured minimum: a relative and an absolute
   * signal of a mass lapse (a network fault between clients and this node) rather than deaths.
   * After a switch the state is kept for `selfPreservationHoldMs` (hysteresis).
   */
  #assessSelfPreservation(now: number): void {
    if (!this.#opts.selfPreservation) return;
    if (now - this.#selfPreservationSince < this.#opts.selfPreservationHoldMs) return;
    const renewals = this.#renewals.count(now);
    const expected = this.#expectedRenewals(now);
    const threshold = (expected * this.#opts.renewalThresholdPercent) / 100;
    const lapsed = this.#lapsed(now);
    const hold = renewals < threshold && lapsed >= this.#opts.selfPreservationMinLapsed;
    if (hold === this.#selfPreservation) return;
    this.#selfPreservation = hold;
    this.#selfPreservationSince = now;
    const fields = {
      renewalsLastMinute: renewals,
      expectedRenewals: Math.round(expected * 100) / 100,
      threshold: Math.round(threshold * 100) / 100,
      lapsed,
      minLapsed: this.#opts.selfPreservationMinLapsed,
    };
    if (hold) this.#log?.warn(fields, 'self-preservation on: a mass lapse of renewals, eviction paused');
    else this.#log?.info(fields, 'self-preservation off: eviction resumed');
  }

  /** Refuses a client version too far ahead of this node's clock: it would pin the record for good. */
  #checkSkew(lastDirtyTimestamp: number, field: string, wall: number): void {
    if (lastDirtyTimestamp > wall + this.#opts.maxClockSkewMs) {
      throw invalid(field, `${lastDirtyTimestamp} is more than ${this.#opts.maxClockSkewMs} ms ahead of this node's clock (${new Date(wall).toISOString()})`);
    }
  }

  /** A candidate version: repeating strings pooled, equal metadata maps shared (see {@link Entry}). */
  #build(r: RegistrationInput, version: VersionFields): Entry {
    return new Entry(r, version, this.#strings);
  }

  #entry(app: string, instanceId: string): Entry | undefined {
    return this.#apps.get(app)?.get(instanceId);
  }

  /** Most registries hold no tombstone: then no key string is built and hashed per write. */
  #tombstone(app: string, instanceId: string): Tombstone | undefined {
    return this.#tombstones.size === 0 ? undefined : this.#tombstones.get(key(app, instanceId));
  }

  #renew(entry: Entry, via: string | undefined, wall: number, now = this.#clock.now()): void {
    this.#leases.setRenewedVia(entry.slot, via);
    this.#leases.setDeadline(entry.slot, now + entry.record.durationSecs * 1000);
    this.#leases.setLastRenewalTimestamp(entry.slot, wall);
    this.#renewals.add(now);
  }

  /** Stores a new version (replacing `existing`), starts its lease and publishes the change; `wall` is the call's reading of the wall clock. */
  #store(entry: Entry, hash: number, existing: Entry | undefined, leaseMs: number, wall: number): Entry {
    const record = entry.record;
    const now = this.#clock.now();
    const rate = 1 / (record.renewalIntervalSecs * 1000);
    const leases = this.#leases;
    if (existing) {
      existing.detach(0);
      entry.attach(existing.slot, leases);
      this.#count(existing.record, -1);
      this.#expected.setRate(entry.slot, rate);
    } else {
      const slot = leases.allocate();
      entry.attach(slot, leases);
      leases.setRegistrationTimestamp(slot, wall);
      this.#expected.add(slot, now, rate);
      if (this.#tombstones.size > 0) this.#tombstones.delete(key(record.app, record.instanceId));
    }
    let app = this.#apps.get(record.app);
    if (!app) {
      this.#apps.set(record.app, (app = new Map()));
      this.#sortedApps = undefined;
      this.#sortedByApp.set(record.app, []);
    }
    app.set(record.instanceId, entry);
    this.#placeSorted(record.app, entry, existing);
    leases.setHash(entry.slot, hash);
    if (record.status === 'UP' && leases.serviceUpTimestamp(entry.slot) === 0) leases.setServiceUpTimestamp(entry.slot, wall);
    leases.setLastRenewalTimestamp(entry.slot, wall);
    leases.setDeadline(entry.slot, now + leaseMs);
    // A (re-)registration proves life like a renewal.
    this.#renewals.add(now);
    this.#count(record, +1);
    this.#publish(existing ? 'MODIFIED' : 'ADDED', entry);
    return entry;
  }

  /** Removes an instance: a cancel at `cancelVersion`, or an eviction when undefined. */
  #remove(entry: Entry, cancelVersion: number | undefined): void {
    const { app, instanceId, lastDirtyTimestamp } = entry.record;
    const entries = this.#apps.get(app)!;
    entries.delete(instanceId);
    this.#placeSorted(app, undefined, entry);
    if (entries.size === 0) {
      this.#apps.delete(app);
      this.#dropSorted(app);
      this.#sortedApps = undefined;
    }
    entry.detach(this.#clock.wallNow());
    this.#leases.free(entry.slot);
    this.#expected.remove(entry.slot);
    this.#count(entry.record, -1);
    this.#bury(app, instanceId, cancelVersion ?? lastDirtyTimestamp, cancelVersion !== undefined);
    this.#publish('DELETED', entry, cancelVersion === undefined ? 'evicted' : 'cancelled');
  }

  #bury(app: string, instanceId: string, lastDirtyTimestamp: number, cancelled: boolean): void {
    const k = key(app, instanceId);
    const old = this.#tombstones.get(k);
    if (old && old.lastDirtyTimestamp > lastDirtyTimestamp) return;
    this.#tombstones.delete(k);
    this.#tombstones.set(k, { app, instanceId, lastDirtyTimestamp, cancelled, expiresAt: this.#clock.now() + this.#opts.tombstoneTtlMs });
    if (this.#tombstones.size > this.#opts.maxTombstones) this.#tombstones.delete(this.#tombstones.keys().next().value!);
  }

  #update(app: string, instanceId: string, change: (r: InstanceRecord) => Partial<InstanceRecord> | undefined): InstanceView {
    app = checkApp(app);
    checkInstanceId(instanceId);
    const entry = this.#entry(app, instanceId);
    if (!entry) throw unknownInstance(app, instanceId);
    const patch = change(entry.record);
    if (!patch) return entry;
    const wall = this.#clock.wallNow();
    // A server-side change is a new version of the record, so it replicates and wins like any other.
    const next = { ...recordFields(entry.record), ...patch };
    const version: VersionFields = {
      status: next.status,
      overriddenStatus: next.overriddenStatus,
      lastDirtyTimestamp: Math.max(wall, entry.record.lastDirtyTimestamp + 1),
      lastUpdatedTimestamp: wall,
    };
    const record = this.#build(next, version);
    this.#checkCapacity(record, entry.record);
    const updated = this.#store(record, this.#hashing ? contentHash(next, version) : UNHASHED, entry, Math.max(this.#leases.deadline(entry.slot) - this.#clock.now(), 0), wall);
    this.#emitLocal({ action: 'register', record });
    return updated;
  }

  #count(record: InstanceRecord, delta: 1 | -1): void {
    this.#size += delta;
    this.#byStatus[record.status] += delta;
    this.#metadataBytes += delta * metadataBytes(record);
  }

  /**
   * Refuses a client write that would take the registry past a capacity limit. Only client
   * writes are bounded: a peer's record is accepted, since its own clients were bounded there
   * and refusing it would leave the replicas disagreeing.
   */
  #checkCapacity(record: InstanceRecord, existing: InstanceRecord | undefined): void {
    const refuse = (limit: keyof RegistryStats['capacityRefusals'], message: string): never => {
      this.#capacityRefusals[limit]++;
      throw new RegistryError('resource_exhausted', message);
    };
    if (!existing) {
      if (this.#size >= this.#opts.maxInstances) refuse('instances', `registry is full: ${this.#size} instances (limit ${this.#opts.maxInstances})`);
      const inApp = this.#apps.get(record.app)?.size ?? 0;
      if (inApp >= this.#opts.maxInstancesPerApp) refuse('instances_per_app', `application ${record.app} is full: ${inApp} instances (limit ${this.#opts.maxInstancesPerApp})`);
    }
    const growth = metadataBytes(record) - (existing ? metadataBytes(existing) : 0);
    if (growth > 0 && this.#metadataBytes + growth > this.#opts.maxMetadataBytes) {
      refuse('metadata_bytes', `metadata of all instances would exceed ${this.#opts.maxMetadataBytes} bytes`);
    }
  }

  #publish(type: ChangeType, entry: Entry, removal?: RemovalCause): void {
    const change: Change = removal === undefined ? { revision: ++this.#revision, type, instance: entry } : { revision: ++this.#revision, type, instance: entry, removal };
    this.#changes.append(change);
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (err) {
        this.#log?.error({ err }, 'change listener failed');
      }
    }
  }

  #emitLocal(write: LocalWrite): void {
    this.#onLocalWrite?.(write);
  }

  #sortedEntries(): Entry[] {
    this.#sortedApps ??= [...this.#apps.keys()].sort();
    const out: Entry[] = [];
    for (const app of this.#sortedApps) {
      for (const entry of this.#appSorted(app)) out.push(entry);
    }
    return out;
  }

  /** The kept entries of an app that exists, in instance-id order (sorted now if they were dropped). */
  #appSorted(app: string): Entry[] {
    let entries = this.#sortedByApp.get(app);
    if (entries === undefined) this.#sortedByApp.set(app, (entries = [...this.#apps.get(app)!.values()].sort(byId)));
    return entries;
  }

  /** Keeps an app's sorted list in step with a write: `added` replaces `removed` (same id), comes, or `removed` goes. */
  #placeSorted(app: string, added: Entry | undefined, removed: Entry | undefined): void {
    const kept = this.#sortedByApp.get(app);
    if (kept === undefined) return;
    const id = (added ?? removed)!.record.instanceId;
    let lo = 0;
    let hi = kept.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (kept[mid]!.record.instanceId < id) lo = mid + 1;
      else hi = mid;
    }
    const found = removed !== undefined && kept[lo] === removed;
    const replaced = added !== undefined && removed !== undefined;
    // Out of step (sorted again when read), or too large to keep through instances coming and going.
    if ((removed !== undefined && !found) || (!replaced && kept.length >= KEEP_SORTED_MAX)) return this.#dropSorted(app);
    let sorted = kept;
    if (this.#lent.delete(kept)) this.#sortedByApp.set(app, (sorted = kept.slice()));
    if (replaced) sorted[lo] = added;
    else if (added !== undefined) sorted.splice(lo, 0, added);
    else sorted.splice(lo, 1);
  }

  #dropSorted(app: string): void {
    const kept = this.#sortedByApp.get(app);
    if (kept === undefined) return;
    this.#lent.delete(kept);
    this.#sortedByApp.delete(app);
  }
}

/** Apps up to this size keep their sorted list through instances coming and going (a splice each); larger ones sort on read. */
const KEEP_SORTED_MAX = 4096;

function byId(a: Entry, b: Entry): number {
  const x = a.record.instanceId;
  const y = b.record.instanceId;
  return x < y ? -1 : x > y ? 1 : 0;
}

function vipListHas(list: string, vip: string): boolean {
  if (list.length === 0) return false;
  const lower = vip.toLowerCase();
  return list.split(',').some((v) => v.trim().toLowerCase() === lower);
}

/** Size of a record's metadata as counted against the registry's metadata limit. */
function metadataBytes(record: InstanceRecord): number {
  let n = 0;
  for (const k in record.metadata) n += k.length + record.metadata[k]!.length;
  return n;
}
