import { RegistryError } from '../core/errors.js';
import type { Registry } from '../core/registry.js';
import type { InstanceRecord } from '../core/types.js';
import * as ipb from '../gen/roster/v1/instance.js';
import * as pb from '../gen/roster/v1/replication_service.js';
import type { ReplicationTask, TaskResult } from '../replication/link.js';
import { instanceToProto, registrationFromProto, statusFromProto } from './convert.js';

const NO_LEASE = { registrationTimestamp: 0, lastRenewalTimestamp: 0, evictionTimestamp: 0, serviceUpTimestamp: 0 };
const SNAPSHOT_CHUNK = 1000;

/** A peer's full record, override included (Register's conversion ignores the override). */
export function recordFromProto(instance: ipb.Instance | undefined): InstanceRecord {
  const input = registrationFromProto(instance);
  return {
    ...input,
    overriddenStatus: statusFromProto(instance!.overriddenStatus, 'instance.overridden_status'),
    lastUpdatedTimestamp: instance!.lastUpdatedTimestamp,
  };
}

export function recordToProto(record: InstanceRecord): ipb.Instance {
  return instanceToProto({ record, lease: NO_LEASE });
}

const ACTION_TO_PROTO = {
  register: pb.ReplicationAction.REPLICATION_ACTION_REGISTER,
  heartbeat: pb.ReplicationAction.REPLICATION_ACTION_HEARTBEAT,
  cancel: pb.ReplicationAction.REPLICATION_ACTION_CANCEL,
} as const;

export function taskToProto(task: ReplicationTask): pb.ReplicationTask {
  if (task.action === 'register') {
    return { action: ACTION_TO_PROTO.register, instance: recordToProto(task.record), originTimestamp: task.originTimestamp };
  }
  return {
    action: ACTION_TO_PROTO[task.action],
    instance: { ...ipb.Instance.fromPartial({}), app: task.app, instanceId: task.instanceId, lastDirtyTimestamp: task.lastDirtyTimestamp },
    originTimestamp: task.originTimestamp,
  };
}

/** A wire task, or why it cannot be one (answered INVALID; the rest of the batch goes on). */
export function taskFromProto(wire: pb.ReplicationTask): { ok: true; value: ReplicationTask } | { ok: false; message: string } {
  try {
    const instance = wire.instance;
    if (instance === undefined) return { ok: false, message: 'instance: is required' };
    const originTimestamp = wire.originTimestamp;
    switch (wire.action) {
      case pb.ReplicationAction.REPLICATION_ACTION_REGISTER:
        return { ok: true, value: { action: 'register', record: recordFromProto(instance), originTimestamp } };
      case pb.ReplicationAction.REPLICATION_ACTION_HEARTBEAT:
      case pb.ReplicationAction.REPLICATION_ACTION_CANCEL: {
        const action = wire.action === pb.ReplicationAction.REPLICATION_ACTION_HEARTBEAT ? 'heartbeat' : 'cancel';
        const { app, instanceId, lastDirtyTimestamp } = instance;
        return { ok: true, value: { action, app, instanceId, lastDirtyTimestamp, originTimestamp } };
      }
      default:
        return { ok: false, message: `action: unknown action ${wire.action}` };
    }
  } catch (err) {
    if (err instanceof RegistryError) return { ok: false, message: err.message };
    throw err;
  }
}

export function taskResultToProto(result: TaskResult): pb.TaskResult {
  switch (result.code) {
    case 'ok':
      return { code: pb.TaskResultCode.TASK_RESULT_CODE_OK };
    case 'not_found':
      return { code: pb.TaskResultCode.TASK_RESULT_CODE_NOT_FOUND };
    case 'conflict':
      return { code: pb.TaskResultCode.TASK_RESULT_CODE_CONFLICT, instance: recordToProto(result.record) };
    case 'invalid':
      return { code: pb.TaskResultCode.TASK_RESULT_CODE_INVALID };
    case 'overloaded':
      return { code: pb.TaskResultCode.TASK_RESULT_CODE_RESOURCE_EXHAUSTED };
  }
}

/** A peer's answer; anything unreadable counts as a refusal, never as a crash. */
export function taskResultFromProto(wire: pb.TaskResult): TaskResult {
  switch (wire.code) {
    case pb.TaskResultCode.TASK_RESULT_CODE_OK:
      return { code: 'ok' };
    case pb.TaskResultCode.TASK_RESULT_CODE_NOT_FOUND:
      return { code: 'not_found' };
    case pb.TaskResultCode.TASK_RESULT_CODE_CONFLICT:
      try {
        return { code: 'conflict', record: recordFromProto(wire.instance) };
      } catch (err) {
        return { code: 'invalid', message: err instanceof Error ? err.message : 'unreadable conflict record' };
      }
    case pb.TaskResultCode.TASK_RESULT_CODE_RESOURCE_EXHAUSTED:
      return { code: 'overloaded' };
    default:
      return { code: 'invalid', message: `peer answered ${wire.code}` };
  }
}

/** The registry (or some apps of it) as Snapshot chunks: records first, then tombstones. */
export function* snapshotChunks(registry: Registry, apps: readonly string[], nodeId: string): Generator<pb.SnapshotResponse> {
  const records = registry.records(apps);
  const wanted = new Set(apps.map((a) => a.toLowerCase()));
  const tombstones = registry
    .tombstones()
    .filter((t) => wanted.size === 0 || wanted.has(t.app))
    .map(({ app, instanceId, lastDirtyTimestamp, cancelled }) => ({ app, instanceId, lastDirtyTimestamp, cancelled }));
  for (let i = 0; i < records.length || i === 0; i += SNAPSHOT_CHUNK) {
    yield {
      nodeId,
      records: records.slice(i, i + SNAPSHOT_CHUNK).map((r) => ({ instance: recordToProto(r.record), leaseRemainingMs: Math.round(r.leaseRemainingMs) })),
      tombstones: [],
    };
  }
  for (let i = 0; i < tombstones.length; i += SNAPSHOT_CHUNK * 4) {
    yield { nodeId, records: [], tombstones: tombstones.slice(i, i + SNAPSHOT_CHUNK * 4) };
  }
}
