import { sameMetadata, type Profile, type StringPool, type UrlForm } from './intern.js';
import { LeaseTable } from './lease-table.js';
import type { InstanceRecord, InstanceStatus, InstanceView, LeaseTimes, PortInfo, RegistrationInput } from './types.js';

/** The URL fields of a record. */
export type UrlField = 'homePageUrl' | 'statusPageUrl' | 'healthCheckUrl';

/** The version fields a stored record gets from the registry rather than from the registration. */
export type VersionFields = Pick<InstanceRecord, 'status' | 'overriddenStatus' | 'lastDirtyTimestamp' | 'lastUpdatedTimestamp'>;

/**
 * Epoch milliseconds are kept as two small integers (high and low part): V8 stores a number
 * field that is not a small integer as a pointer to a 16-byte heap number, an object of its
 * own for the collector. 2^26 keeps both parts small for any timestamp up to 2^53.
 */
const SPLIT = 2 ** 26;

/** Lease times of a record never stored (a stale candidate): all zero. */
const NO_LEASE: LeaseTimes = Object.freeze({ registrationTimestamp: 0, lastRenewalTimestamp: 0, evictionTimestamp: 0, serviceUpTimestamp: 0 });

/**
 * One version of an instance: the record, and once stored the view readers get (record and
 * lease in one object). A million instances are a million of these, so it is compact: one
 * object with the instance id string, the statuses, pooled VIPs, zone and metadata (these
 * vary within an app: three zones, a rollout's two versions), a pointer to the {@link Profile}
 * the instance shares with the others of its app (app, ports, region, lease settings and the
 * URLs as pooled forms over the host name or address), the host name as a length when the id
 * begins with it (Spring's `host:app:port`; Eureka's default id is the host name), an IPv4
 * address as a number, timestamps as small integers, and the lease in the registry's
 * {@link LeaseTable} at `slot`. That is 2 heap objects and 160 bytes per instance instead of
 * 10 objects (a record, a view, two boxed timestamps and six strings), which both shrinks the
 * heap and shortens every collection: a young one copies each new version twice, a major one
 * visits each object.
 *
 * While stored, the lease times are read live from the table; a replaced or removed version
 * keeps the times it had then (the slot may be reused). The profile's fields, the host,
 * address, URLs and timestamps are getters, so `{...record}` does not copy them: use
 * {@link recordFields}.
 */
export class Entry implements InstanceRecord, InstanceView, LeaseTimes {
  readonly instanceId: string;
  readonly status: InstanceStatus;
  readonly overriddenStatus: InstanceStatus | undefined;
  readonly vipAddress: string;
  readonly secureVipAddress: string;
  readonly zone: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** What the instance shares with others of its app: see {@link Profile}. */
  readonly #profile: Profile;
  /** The host name, or its length when it is how the instance id begins (`host:app:port` ids). */
  readonly #hostName: string | number;
  /** The address, or a dotted IPv4 address as its 32 bits (a signed small integer). */
  readonly #ipAddr: string | number;
  readonly #dirtyHigh: number;
  readonly #dirtyLow: number;
  readonly #updatedHigh: number;
  readonly #updatedLow: number;
  #slot = -1;
  /** The registry's table while this version is stored, the times it kept once replaced or removed. */
  #lease: LeaseTable<Entry> | LeaseTimes = NO_LEASE;

  /** A record from a validated registration (strings pooled, metadata shared) and its version. */
  constructor(r: RegistrationInput, version: VersionFields, pool: StringPool) {
    this.instanceId = r.instanceId;
    this.status = version.status;
    this.overriddenStatus = version.overriddenStatus;
    this.vipAddress = pool.intern(r.vipAddress);
    this.secureVipAddress = pool.intern(r.secureVipAddress);
    this.zone = pool.intern(r.zone);
    this.metadata = pool.metadata(r.metadata);
    this.#profile = pool.profile(r);
    this.#hostName = r.hostName.length > 0 && r.instanceId.startsWith(r.hostName) ? r.hostName.length : r.hostName;
    this.#ipAddr = packIpv4(r.ipAddr) ?? r.ipAddr;
    this.#dirtyHigh = Math.floor(version.lastDirtyTimestamp / SPLIT);
    this.#dirtyLow = version.lastDirtyTimestamp - this.#dirtyHigh * SPLIT;
    this.#updatedHigh = Math.floor(version.lastUpdatedTimestamp / SPLIT);
    this.#updatedLow = version.lastUpdatedTimestamp - this.#updatedHigh * SPLIT;
  }

  get app(): string {
    return this.#profile.app;
  }

  get port(): PortInfo {
    return this.#profile.port;
  }

  get securePort(): PortInfo {
    return this.#profile.securePort;
  }

  get region(): string {
    return this.#profile.region;
  }

  get renewalIntervalSecs(): number {
    return this.#profile.renewalIntervalSecs;
  }

  get durationSecs(): number {
    return this.#profile.durationSecs;
  }

  get hostName(): string {
    const h = this.#hostName;
    return typeof h === 'number' ? this.instanceId.slice(0, h) : h;
  }

  get ipAddr(): string {
    const a = this.#ipAddr;
    return typeof a === 'number' ? `${(a >>> 24) & 255}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}` : a;
  }

  get homePageUrl(): string {
    return this.#url(this.#profile.homePageUrl);
  }

  get statusPageUrl(): string {
    return this.#url(this.#profile.statusPageUrl);
  }

  get healthCheckUrl(): string {
    return this.#url(this.#profile.healthCheckUrl);
  }

  /** Builds only the part the form holds (URLs are read per write, for the answer and Watch). */
  #url(u: string | UrlForm): string {
    if (typeof u === 'string') return u;
    return u.render(u.kind === 'host' ? this.hostName : this.ipAddr);
  }

  /**
   * A URL as stored: the string itself, or its pooled form around {@link hostName} (a `host`
   * form) or {@link ipAddr} (an `ip` one). For encoders that write the parts instead of
   * building the URL (grpc/wire.ts: every Register answer and Watch change writes three).
   */
  storedUrl(field: UrlField): string | UrlForm {
    return this.#profile[field];
  }

  /** The address as its 32 bits when it is a dotted IPv4 address, for encoders that write it without building the string. */
  get ipv4(): number | undefined {
    const a = this.#ipAddr;
    return typeof a === 'number' ? a >>> 0 : undefined;
  }

  /**
   * Whether `other` has this version's content (every field the content hash covers: see
   * version.ts), told from the compact fields without building a string. An unchanged
   * re-registration ties with the stored version on dirty timestamp and hash; this settles the
   * tie, where comparing the canonical strings was ~6 KB of garbage per call.
   */
  sameContentAs(other: Entry): boolean {
    // With the same instance id, a host name or an address has one compact form per value:
    // equal forms are equal values. URL forms are compared as pooled, and rendered when unequal.
    return (
      this.instanceId === other.instanceId &&
      this.#hostName === other.#hostName &&
      this.#ipAddr === other.#ipAddr &&
      this.#dirtyHigh === other.#dirtyHigh &&
      this.#dirtyLow === other.#dirtyLow &&
      this.status === other.status &&
      this.overriddenStatus === other.overriddenStatus &&
      this.vipAddress === other.vipAddress &&
      this.secureVipAddress === other.secureVipAddress &&
      this.zone === other.zone &&
      (this.metadata === other.metadata || sameMetadata(this.metadata, other.metadata)) &&
      (this.#profile === other.#profile || this.#sameProfileAs(other))
    );
  }

  /** The shared fields compared one by one: the same values can sit in two profiles (see {@link Profile}). */
  #sameProfileAs(other: Entry): boolean {
    const a = this.#profile;
    const b = other.#profile;
    return (
      a.app === b.app &&
      samePort(a.port, b.port) &&
      samePort(a.securePort, b.securePort) &&
      a.region === b.region &&
      a.renewalIntervalSecs === b.renewalIntervalSecs &&
      a.durationSecs === b.durationSecs &&
      (a.homePageUrl === b.homePageUrl || this.homePageUrl === other.homePageUrl) &&
      (a.statusPageUrl === b.statusPageUrl || this.statusPageUrl === other.statusPageUrl) &&
      (a.healthCheckUrl === b.healthCheckUrl || this.healthCheckUrl === other.healthCheckUrl)
    );
  }

  get lastDirtyTimestamp(): number {
    return this.#dirtyHigh * SPLIT + this.#dirtyLow;
  }

  get lastUpdatedTimestamp(): number {
    return this.#updatedHigh * SPLIT + this.#updatedLow;
  }

  get record(): InstanceRecord {
    return this;
  }

  get lease(): LeaseTimes {
    return this;
  }

  /** The lease slot (valid once stored; kept after removal, when it may belong to another instance). */
  get slot(): number {
    return this.#slot;
  }

  /** The record's content hash (see version.ts), kept in the lease table: only a stored version is ever compared. */
  get hash(): number {
    return (this.#lease as LeaseTable<Entry>).hash(this.#slot);
  }

  get registrationTimestamp(): number {
    const l = this.#lease;
    return l instanceof LeaseTable ? l.registrationTimestamp(this.#slot) : l.registrationTimestamp;
  }

  get lastRenewalTimestamp(): number {
    const l = this.#lease;
    return l instanceof LeaseTable ? l.lastRenewalTimestamp(this.#slot) : l.lastRenewalTimestamp;
  }

  get serviceUpTimestamp(): number {
    const l = this.#lease;
    return l instanceof LeaseTable ? l.serviceUpTimestamp(this.#slot) : l.serviceUpTimestamp;
  }

  get evictionTimestamp(): number {
    const l = this.#lease;
    return l instanceof LeaseTable ? 0 : l.evictionTimestamp;
  }

  /** Stores this version: its lease is `slot` of `leases` from now on. */
  attach(slot: number, leases: LeaseTable<Entry>): void {
    this.#slot = slot;
    this.#lease = leases;
    leases.setOwner(slot, this);
  }

  /** Keeps the lease times as they are now: this version was replaced or removed. */
  detach(evictionTimestamp: number): void {
    if (!(this.#lease instanceof LeaseTable)) return;
    this.#lease = {
      registrationTimestamp: this.registrationTimestamp,
      lastRenewalTimestamp: this.lastRenewalTimestamp,
      serviceUpTimestamp: this.serviceUpTimestamp,
      evictionTimestamp,
    };
  }
}

function samePort(a: PortInfo, b: PortInfo): boolean {
  return a === b || (a.number === b.number && a.enabled === b.enabled);
}

/** A dotted IPv4 address in its canonical form (no leading zeros) as 32 bits, else undefined. */
function packIpv4(s: string): number | undefined {
  if (s.length < 7 || s.length > 15) return undefined;
  let packed = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || part > 255) return undefined;
      packed = (packed << 8) | part;
      parts++;
      part = digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return undefined;
      part = part * 10 + (c - 48);
      digits++;
    } else return undefined;
  }
  return parts === 4 ? packed : undefined;
}

/** A record's fields as a plain object (what `{...record}` was before records became compact). */
export function recordFields(r: InstanceRecord): InstanceRecord {
  return {
    app: r.app,
    instanceId: r.instanceId,
    hostName: r.hostName,
    ipAddr: r.ipAddr,
    port: r.port,
    securePort: r.securePort,
    status: r.status,
    overriddenStatus: r.overriddenStatus,
    vipAddress: r.vipAddress,
    secureVipAddress: r.secureVipAddress,
    zone: r.zone,
    region: r.region,
    metadata: r.metadata,
    homePageUrl: r.homePageUrl,
    statusPageUrl: r.statusPageUrl,
    healthCheckUrl: r.healthCheckUrl,
    renewalIntervalSecs: r.renewalIntervalSecs,
    durationSecs: r.durationSecs,
    lastDirtyTimestamp: r.lastDirtyTimestamp,
    lastUpdatedTimestamp: r.lastUpdatedTimestamp,
  };
}
