/** Instance lifecycle status. */
export type InstanceStatus = 'UP' | 'DOWN' | 'STARTING' | 'OUT_OF_SERVICE' | 'UNKNOWN';

export const STATUSES: readonly InstanceStatus[] = ['UP', 'DOWN', 'STARTING', 'OUT_OF_SERVICE', 'UNKNOWN'];

export interface PortInfo {
  readonly number: number;
  readonly enabled: boolean;
}

/**
 * The replicated content of an instance: everything but node-local lease timestamps.
 * Records are immutable; a change makes a new record. Identity is (app, instanceId) with
 * `app` in lower case. A record the registry holds is compact and some of its fields are
 * getters (core/entry.ts): copy one with `recordFields`, not a spread.
 */
export interface InstanceRecord {
  readonly app: string;
  readonly instanceId: string;
  readonly hostName: string;
  readonly ipAddr: string;
  readonly port: PortInfo;
  readonly securePort: PortInfo;
  /** Effective status after the override rules. */
  readonly status: InstanceStatus;
  /** Operator override, if any. */
  readonly overriddenStatus: InstanceStatus | undefined;
  readonly vipAddress: string;
  readonly secureVipAddress: string;
  readonly zone: string;
  readonly region: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly homePageUrl: string;
  readonly statusPageUrl: string;
  readonly healthCheckUrl: string;
  readonly renewalIntervalSecs: number;
  readonly durationSecs: number;
  /** The record's version (epoch ms). Newer wins; ties break on content. */
  readonly lastDirtyTimestamp: number;
  /** When this node last changed the record (epoch ms). */
  readonly lastUpdatedTimestamp: number;
}

/** What a client sends on Register: a record whose server-filled fields may be absent. */
export type RegistrationInput = Omit<InstanceRecord, 'overriddenStatus' | 'lastUpdatedTimestamp' | 'renewalIntervalSecs' | 'durationSecs' | 'lastDirtyTimestamp'> & {
  /** 0 means "not set": the default applies. */
  readonly renewalIntervalSecs: number;
  readonly durationSecs: number;
  /** 0 means "not set": the receiving node's wall time is used. */
  readonly lastDirtyTimestamp: number;
};

/** Node-local lease timestamps (epoch ms), copied at read time. */
export interface LeaseTimes {
  readonly registrationTimestamp: number;
  readonly lastRenewalTimestamp: number;
  readonly evictionTimestamp: number;
  readonly serviceUpTimestamp: number;
}

/** A record as read from one node: the record plus that node's lease timestamps. */
export interface InstanceView {
  readonly record: InstanceRecord;
  readonly lease: LeaseTimes;
}

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** Why an instance was removed: an explicit cancel (local or replicated) or a lease eviction on this node. */
export type RemovalCause = 'cancelled' | 'evicted';

/** One visible change. For DELETED, `instance` is the last record before removal. */
export interface Change {
  readonly revision: number;
  readonly type: ChangeType;
  readonly instance: InstanceView;
  /** Set on DELETED changes only. */
  readonly removal?: RemovalCause;
}

/** Where a write came from: a client of this node, or a peer replicating its own write. */
export type WriteOrigin = 'client' | 'replication';

/** A client write applied locally, handed to replication. Replicated writes never produce one. */
export type LocalWrite =
  | { readonly action: 'register'; readonly record: InstanceRecord }
  | {
      readonly action: 'heartbeat' | 'cancel';
      readonly app: string;
      readonly instanceId: string;
      readonly lastDirtyTimestamp: number;
    };

/** The outcome of a heartbeat. `conflict` is only ever returned to a replication origin. */
export type HeartbeatOutcome =
  | { readonly kind: 'ok'; readonly status: InstanceStatus }
  | { readonly kind: 'not_found'; readonly reason: 'unknown' | 'expired' | 'status_unknown' | 'caller_newer' }
  | { readonly kind: 'conflict'; readonly record: InstanceRecord };

/** A consistent snapshot of the registry, ordered by (app, instanceId). */
export interface Snapshot {
  readonly revision: number;
  readonly reconcileHash: string;
  /** Every instance; a large registry builds this list on first use (see `apps`). */
  readonly instances: readonly InstanceView[];
  /** The same instances app by app, in app order: taken in one step per app, not per instance. */
  readonly apps: readonly (readonly InstanceView[])[];
}

export interface Delta {
  readonly changes: readonly Change[];
  readonly revision: number;
  readonly hasMore: boolean;
  readonly resyncRequired: boolean;
}

/** Counters for metrics and health. */
export interface RegistryStats {
  readonly size: number;
  readonly byStatus: Readonly<Record<InstanceStatus, number>>;
  /** Renewals (and registrations) over the sliding last minute. */
  readonly renewalsLastMinute: number;
  /** What the registered instances should have sent over that minute (each since it registered). */
  readonly expectedRenewalsPerMinute: number;
  /** Expired instances still registered plus those evicted in the last minute. */
  readonly lapsedInstances: number;
  readonly selfPreservation: boolean;
  readonly evictionsTotal: number;
  readonly revision: number;
  /** Metadata keys and values of all instances, as counted against the metadata limit. */
  readonly metadataBytes: number;
  /** Expired leases kept because their renewals come through a peer this node cannot hear from. */
  readonly heldForUnreachablePeers: number;
  /** Peers that replicated to this node and whose stream is now closed. */
  readonly unreachablePeers: number;
  /** Client writes refused at a capacity limit, by limit. */
  readonly capacityRefusals: Readonly<Record<'instances' | 'instances_per_app' | 'metadata_bytes', number>>;
}

/** What a Register did: the record as stored, and the revision after. */
export interface Registered {
  readonly view: InstanceView;
  readonly revision: number;
  /** The node held a newer version than the one sent, and kept it: `view` is that version. */
  readonly kept: boolean;
}

/**
 * What the transports need from a registry: the narrow seam handlers depend on.
 * Inputs are validated here; failures throw {@link RegistryError} (kind `invalid_argument`
 * naming the proto field, e.g. `instance.port.number`, or `not_found`). App names may be
 * given in any case.
 */
export interface RegistryApi {
  /** Stores or replaces a record (dirty-timestamp rule, override rules) and renews its lease. */
  register(input: RegistrationInput): Registered;
  /** Renews a lease; `lastDirtyTimestamp` 0 means "not sent". Never throws not_found: see the outcome. */
  heartbeat(app: string, instanceId: string, lastDirtyTimestamp?: number, origin?: WriteOrigin): HeartbeatOutcome;
  /** Removes an instance; returns the revision after. Throws not_found when unknown (client origin). */
  cancel(app: string, instanceId: string, origin?: WriteOrigin, lastDirtyTimestamp?: number): number;
  setStatusOverride(app: string, instanceId: string, status: InstanceStatus): InstanceView;
  clearStatusOverride(app: string, instanceId: string): InstanceView;
  updateMetadata(app: string, instanceId: string, set: Readonly<Record<string, string>>, remove: readonly string[]): InstanceView;
  /** Throws not_found when unknown. */
  get(app: string, instanceId: string): InstanceView;
  /** An unknown app yields no instances (not an error). */
  getApplication(app: string): { instances: readonly InstanceView[]; revision: number };
  /** Every live instance with this id, whatever its app, ordered by app (ids are unique per app only). */
  findById(instanceId: string): readonly InstanceView[];
  listByVip(vip: string, secure: boolean): { instances: readonly InstanceView[]; revision: number };
  snapshot(): Snapshot;
  /** Changes with revision > since, at most `max`. */
  delta(since: number, max: number): Delta;
  /** Calls `listener` synchronously for every change, in revision order. Returns an unsubscribe. */
  subscribe(listener: (change: Change) => void): () => void;
  /** The oldest revision the change log can still replay from (`delta(since)` needs since >= this). */
  readonly oldestReplayableRevision: number;
  readonly revision: number;
  stats(): RegistryStats;
}
