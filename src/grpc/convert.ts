import { invalid, RegistryError } from '../core/errors.js';
import { checkApp } from '../core/validate.js';
import type { Registry } from '../core/registry.js';
import type { Change, ChangeType, InstanceRecord, RemovalCause, InstanceStatus, InstanceView, LeaseTimes, PortInfo, RegistrationInput } from '../core/types.js';
import * as pb from '../gen/roster/v1/instance.js';
import * as rpb from '../gen/roster/v1/replication_service.js';
import type { ReplicationTask, TaskResult } from '../replication/link.js';

const STATUS_TO_PROTO: Readonly<Record<InstanceStatus, pb.InstanceStatus>> = {
  UP: pb.InstanceStatus.INSTANCE_STATUS_UP,
  DOWN: pb.InstanceStatus.INSTANCE_STATUS_DOWN,
  STARTING: pb.InstanceStatus.INSTANCE_STATUS_STARTING,
  OUT_OF_SERVICE: pb.InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE,
  UNKNOWN: pb.InstanceStatus.INSTANCE_STATUS_UNKNOWN,
};

const STATUS_FROM_PROTO: ReadonlyMap<number, InstanceStatus> = new Map(Object.entries(STATUS_TO_PROTO).map(([status, value]) => [value, status as InstanceStatus]));

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
 * The metadata object is taken as it is, not copied: a decoded request is used once, and the
 * registry keeps its own pooled copy (core/intern.ts).
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
    metadata: instance.metadata,
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

const REMOVAL_TO_PROTO: Readonly<Record<RemovalCause, pb.RemovalCause>> = {
  cancelled: pb.RemovalCause.REMOVAL_CAUSE_CANCELLED,
  evicted: pb.RemovalCause.REMOVAL_CAUSE_EVICTED,
};

export function changeToProto(change: Change): pb.Change {
  return {
    revision: change.revision,
    type: CHANGE_TYPE_TO_PROTO[change.type],
    instance: instanceToProto(change.instance),
    removal: change.removal === undefined ? pb.RemovalCause.REMOVAL_CAUSE_UNSPECIFIED : REMOVAL_TO_PROTO[change.removal],
  };
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

// --- replication: full records, tasks, results, snapshots ---

/** Replicated records carry no lease times: each node keeps its own lease. */
export const NO_LEASE: LeaseTimes = Object.freeze({ registrationTimestamp: 0, lastRenewalTimestamp: 0, evictionTimestamp: 0, serviceUpTimestamp: 0 });
const SNAPSHOT_CHUNK = 1000;
/** A Snapshot request names at most this many apps (a registry with more is pulled whole). */
export const MAX_SNAPSHOT_APPS = 10_000;

/** A peer's full record, override included (Register's conversion ignores the override). */
export function recordFromProto(instance: pb.Instance | undefined): InstanceRecord {
  const input = registrationFromProto(instance);
  return {
    ...input,
    overriddenStatus: statusFromProto(instance!.overriddenStatus, 'instance.overridden_status'),
    lastUpdatedTimestamp: instance!.lastUpdatedTimestamp,
  };
}

export function recordToProto(record: InstanceRecord): pb.Instance {
  return instanceToProto({ record, lease: NO_LEASE });
}

/** A wire task, or why it cannot be one (a string: answered INVALID; the rest of the batch goes on). */
export function taskFromProto(wire: rpb.ReplicationTask): ReplicationTask | string {
  try {
    const instance = wire.instance;
    if (instance === undefined) return 'instance: is required';
    const originTimestamp = wire.originTimestamp;
    switch (wire.action) {
      case rpb.ReplicationAction.REPLICATION_ACTION_REGISTER:
        return { action: 'register', record: recordFromProto(instance), originTimestamp };
      case rpb.ReplicationAction.REPLICATION_ACTION_HEARTBEAT:
      case rpb.ReplicationAction.REPLICATION_ACTION_CANCEL: {
        const action = wire.action === rpb.ReplicationAction.REPLICATION_ACTION_HEARTBEAT ? 'heartbeat' : 'cancel';
        const { app, instanceId, lastDirtyTimestamp } = instance;
        return { action, app, instanceId, lastDirtyTimestamp, originTimestamp };
      }
      default:
        return `action: unknown action ${wire.action}`;
    }
  } catch (err) {
    if (err instanceof RegistryError) return err.message;
    throw err;
  }
}

// Results without a record are shared: one per replicated task, tens of thousands a second.
const RESULT_OK: rpb.TaskResult = Object.freeze({ code: rpb.TaskResultCode.TASK_RESULT_CODE_OK });
const RESULT_NOT_FOUND: rpb.TaskResult = Object.freeze({ code: rpb.TaskResultCode.TASK_RESULT_CODE_NOT_FOUND });
const RESULT_INVALID: rpb.TaskResult = Object.freeze({ code: rpb.TaskResultCode.TASK_RESULT_CODE_INVALID });
const RESULT_OVERLOADED: rpb.TaskResult = Object.freeze({ code: rpb.TaskResultCode.TASK_RESULT_CODE_RESOURCE_EXHAUSTED });

export function taskResultToProto(result: TaskResult): rpb.TaskResult {
  switch (result.code) {
    case 'ok':
      return RESULT_OK;
    case 'not_found':
      return RESULT_NOT_FOUND;
    case 'conflict':
      return { code: rpb.TaskResultCode.TASK_RESULT_CODE_CONFLICT, instance: recordToProto(result.record) };
    case 'invalid':
      return RESULT_INVALID;
    case 'overloaded':
      return RESULT_OVERLOADED;
  }
}

/** A peer's answer; anything unreadable counts as a refusal, never as a crash. */
export function taskResultFromProto(wire: rpb.TaskResult): TaskResult {
  switch (wire.code) {
    case rpb.TaskResultCode.TASK_RESULT_CODE_OK:
      return { code: 'ok' };
    case rpb.TaskResultCode.TASK_RESULT_CODE_NOT_FOUND:
      return { code: 'not_found' };
    case rpb.TaskResultCode.TASK_RESULT_CODE_CONFLICT:
      try {
        return { code: 'conflict', record: recordFromProto(wire.instance) };
      } catch (err) {
        return { code: 'invalid', message: err instanceof Error ? err.message : 'unreadable conflict record' };
      }
    case rpb.TaskResultCode.TASK_RESULT_CODE_RESOURCE_EXHAUSTED:
      return { code: 'overloaded' };
    default:
      return { code: 'invalid', message: `peer answered ${wire.code}` };
  }
}

/** The registry (or some apps of it) as Snapshot chunks: records first, then tombstones. */
export function* snapshotChunks(registry: Registry, apps: readonly string[], nodeId: string): Generator<rpb.SnapshotResponse> {
  if (apps.length > MAX_SNAPSHOT_APPS) throw invalid('apps', `at most ${MAX_SNAPSHOT_APPS} names per request (got ${apps.length})`);
  for (const [i, app] of apps.entries()) checkApp(app, `apps[${i}]`);
  const wanted = new Set(apps.map((a) => a.toLowerCase()));
  let records: rpb.SnapshotRecord[] = [];
  let sent = false;
  for (const r of registry.iterateRecords([...wanted])) {
    records.push({ instance: recordToProto(r.record), leaseRemainingMs: Math.round(r.leaseRemainingMs) });
    if (records.length === SNAPSHOT_CHUNK) {
      yield { nodeId, records, tombstones: [] };
      records = [];
      sent = true;
    }
  }
  if (records.length > 0 || !sent) yield { nodeId, records, tombstones: [] };
  let tombstones: rpb.Tombstone[] = [];
  for (const { app, instanceId, lastDirtyTimestamp, cancelled } of registry.tombstones()) {
    if (wanted.size > 0 && !wanted.has(app)) continue;
    tombstones.push({ app, instanceId, lastDirtyTimestamp, cancelled });
    if (tombstones.length === SNAPSHOT_CHUNK * 4) {
      yield { nodeId, records: [], tombstones };
      tombstones = [];
    }
  }
  if (tombstones.length > 0) yield { nodeId, records: [], tombstones };
}
