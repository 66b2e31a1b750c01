import { invalid } from '../core/errors.js';
import type { Change, ChangeType, InstanceRecord, InstanceStatus, InstanceView, PortInfo, RegistrationInput } from '../core/types.js';
import * as pb from '../gen/roster/v1/instance.js';

const STATUS_TO_PROTO: Readonly<Record<InstanceStatus, pb.InstanceStatus>> = {
  UP: pb.InstanceStatus.INSTANCE_STATUS_UP,
  DOWN: pb.InstanceStatus.INSTANCE_STATUS_DOWN,
  STARTING: pb.InstanceStatus.INSTANCE_STATUS_STARTING,
  OUT_OF_SERVICE: pb.InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE,
  UNKNOWN: pb.InstanceStatus.INSTANCE_STATUS_UNKNOWN,
};

const STATUS_FROM_PROTO: ReadonlyMap<number, InstanceStatus> = new Map(
  Object.entries(STATUS_TO_PROTO).map(([status, value]) => [value, status as InstanceStatus]),
);

const CHANGE_TYPE_TO_PROTO: Readonly<Record<ChangeType, pb.ChangeType>> = {
  ADDED: pb.ChangeType.CHANGE_TYPE_ADDED,
  MODIFIED: pb.ChangeType.CHANGE_TYPE_MODIFIED,
  DELETED: pb.ChangeType.CHANGE_TYPE_DELETED,
};

/**
 * Reads a wire status. UNSPECIFIED gives `undefined` (the caller decides what "not set"
 * means); a number outside the enum, which only the wire can carry, is refused naming `field`.
 */
export function statusFromProto(value: pb.InstanceStatus, field: string): InstanceStatus | undefined {
  if (value === pb.InstanceStatus.INSTANCE_STATUS_UNSPECIFIED) return undefined;
  const status = STATUS_FROM_PROTO.get(value);
  if (status === undefined) throw invalid(field, `unknown status ${value}`);
  return status;
}

/** Writes a domain status; `undefined` (no override) becomes UNSPECIFIED. */
export function statusToProto(status: InstanceStatus | undefined): pb.InstanceStatus {
  return status === undefined ? pb.InstanceStatus.INSTANCE_STATUS_UNSPECIFIED : STATUS_TO_PROTO[status];
}

/**
 * Turns Register's `instance` into a registration. Only what the wire alone can get wrong is
 * checked here (a missing message, an unknown enum number); the core validates the rest.
 * Status UNSPECIFIED means UP; `overridden_status` is ignored (SetStatusOverride sets it).
 */
export function registrationFromProto(instance: pb.Instance | undefined): RegistrationInput {
  if (instance === undefined) throw invalid('instance', 'is required');
  return {
    app: instance.app,
    instanceId: instance.instanceId,
    hostName: instance.hostName,
    ipAddr: instance.ipAddr,
    port: portFromProto(instance.port),
    securePort: portFromProto(instance.securePort),
    status: statusFromProto(instance.status, 'instance.status') ?? 'UP',
    vipAddress: instance.vipAddress,
    secureVipAddress: instance.secureVipAddress,
    zone: instance.zone,
    region: instance.region,
    metadata: { ...instance.metadata },
    homePageUrl: instance.homePageUrl,
    statusPageUrl: instance.statusPageUrl,
    healthCheckUrl: instance.healthCheckUrl,
    renewalIntervalSecs: instance.lease?.renewalIntervalSecs ?? 0,
    durationSecs: instance.lease?.durationSecs ?? 0,
    lastDirtyTimestamp: instance.lastDirtyTimestamp,
  };
}

function portFromProto(port: pb.Port | undefined): PortInfo {
  return { number: port?.number ?? 0, enabled: port?.enabled ?? false };
}

/** A record as one node sees it: lease settings from the record, timestamps from that node's lease. */
export function instanceToProto(view: InstanceView): pb.Instance {
  const r = view.record;
  return {
    app: r.app,
    instanceId: r.instanceId,
    hostName: r.hostName,
    ipAddr: r.ipAddr,
    port: { number: r.port.number, enabled: r.port.enabled },
    securePort: { number: r.securePort.number, enabled: r.securePort.enabled },
    status: statusToProto(r.status),
    overriddenStatus: statusToProto(r.overriddenStatus),
    vipAddress: r.vipAddress,
    secureVipAddress: r.secureVipAddress,
    zone: r.zone,
    region: r.region,
    metadata: r.metadata,
    homePageUrl: r.homePageUrl,
    statusPageUrl: r.statusPageUrl,
    healthCheckUrl: r.healthCheckUrl,
    lease: {
      renewalIntervalSecs: r.renewalIntervalSecs,
      durationSecs: r.durationSecs,
      registrationTimestamp: view.lease.registrationTimestamp,
      lastRenewalTimestamp: view.lease.lastRenewalTimestamp,
      evictionTimestamp: view.lease.evictionTimestamp,
      serviceUpTimestamp: view.lease.serviceUpTimestamp,
    },
    lastDirtyTimestamp: r.lastDirtyTimestamp,
    lastUpdatedTimestamp: r.lastUpdatedTimestamp,
  };
}

export function changeToProto(change: Change): pb.Change {
  return { revision: change.revision, type: CHANGE_TYPE_TO_PROTO[change.type], instance: instanceToProto(change.instance) };
}

// Tags, length prefixes, varints of every non-string field and the enclosing Change: generous.
const FIXED_OVERHEAD_BYTES = 256;
const PER_METADATA_ENTRY_BYTES = 16;

/**
 * An upper bound of the encoded size of `record` as a proto Instance (inside a Change), cheap
 * enough to run per instance: streams cut messages by it so each stays under a client's
 * 4 MiB receive limit whatever the instances hold.
 */
export function encodedSizeBound(record: InstanceRecord): number {
  let bytes =
    FIXED_OVERHEAD_BYTES +
    Buffer.byteLength(record.app) +
    Buffer.byteLength(record.instanceId) +
    Buffer.byteLength(record.hostName) +
    Buffer.byteLength(record.ipAddr) +
    Buffer.byteLength(record.vipAddress) +
    Buffer.byteLength(record.secureVipAddress) +
    Buffer.byteLength(record.zone) +
    Buffer.byteLength(record.region) +
    Buffer.byteLength(record.homePageUrl) +
    Buffer.byteLength(record.statusPageUrl) +
    Buffer.byteLength(record.healthCheckUrl);
  for (const [key, value] of Object.entries(record.metadata)) {
    bytes += PER_METADATA_ENTRY_BYTES + Buffer.byteLength(key) + Buffer.byteLength(value);
  }
  return bytes;
}
