import type { Registry } from '../core/registry.js';
import { RegistryError } from '../core/errors.js';
import type { ReplicationTask, TaskResult } from './link.js';

/** The part of the registry a receiving peer writes to. */
export type ReplicaRegistry = Pick<Registry, 'applyRecord' | 'heartbeat' | 'cancel' | 'record'>;

/**
 * Applies a batch of a peer's tasks as replicated writes (never replicated again) and answers
 * one result per task: NOT_FOUND asks the sender for a register, CONFLICT hands it our newer record.
 */
export function applyTasks(registry: ReplicaRegistry, tasks: readonly ReplicationTask[], via?: string): TaskResult[] {
  return tasks.map((task) => applyTask(registry, task, via));
}

/**
 * One task of {@link applyTasks}; a task the core refuses is answered `invalid`. `via` names the
 * sending peer, so leases it renews are not evicted while this node cannot hear from it.
 */
export function applyTask(registry: ReplicaRegistry, task: ReplicationTask, via?: string): TaskResult {
  try {
    return apply(registry, task, via);
  } catch (err) {
    if (err instanceof RegistryError && err.kind === 'invalid_argument') return { code: 'invalid', message: err.message };
    throw err;
  }
}

// Shared: one result per replicated task.
const OK: TaskResult = Object.freeze({ code: 'ok' });
const NOT_FOUND: TaskResult = Object.freeze({ code: 'not_found' });

function apply(registry: ReplicaRegistry, task: ReplicationTask, via: string | undefined): TaskResult {
  switch (task.action) {
    case 'register': {
      if (registry.applyRecord(task.record, undefined, via) !== 'stale') return OK;
      const ours = registry.record(task.record.app, task.record.instanceId);
      // Ours is newer: hand it back so the sender converges now rather than at the next digest.
      return ours && ours.lastDirtyTimestamp >= task.record.lastDirtyTimestamp ? { code: 'conflict', record: ours } : OK;
    }
    case 'heartbeat': {
      const outcome = registry.heartbeat(task.app, task.instanceId, task.lastDirtyTimestamp, 'replication', via);
      if (outcome.kind === 'ok') return OK;
      if (outcome.kind === 'conflict') return { code: 'conflict', record: outcome.record };
      return NOT_FOUND;
    }
    case 'cancel':
      registry.cancel(task.app, task.instanceId, 'replication', task.lastDirtyTimestamp);
      return OK;
  }
}
