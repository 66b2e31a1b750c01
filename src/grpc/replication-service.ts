import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { Registry } from '../core/registry.js';
import * as pb from '../gen/roster/v1/replication_service.js';
import type { ReplicationTask } from '../replication/link.js';
import { applyTask } from '../replication/receiver.js';
import { toRpcStatus, type RpcStatus } from './errors.js';
import { taskFromProto, taskResultToProto, snapshotChunks } from './convert.js';
import { NODE_ID_HEADER } from './peer-link.js';
import { encodeReplicateResponse } from './write-codec.js';
import type { TokenBucket } from './rate-limit.js';

export interface ReplicationServiceOptions {
  readonly registry: Registry;
  readonly nodeId: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Caps replicated tasks per second; over it tasks are answered RESOURCE_EXHAUSTED. */
  readonly limiter?: TokenBucket;
  /** Receives origin→applied lag per task, in seconds (wall clocks of two nodes: skew adds to it). */
  readonly observeLag?: (action: ReplicationTask['action'], seconds: number) => void;
}

/** Senders batch at most 250; anything far larger is a broken or hostile peer. */
const MAX_TASKS_PER_BATCH = 1000;

const OVERLOADED: pb.TaskResult = taskResultToProto({ code: 'overloaded' });
const INVALID: pb.TaskResult = taskResultToProto({ code: 'invalid', message: '' });

/** The ReplicationService handlers, plus what shutdown needs to end the peers' streams. */
export interface ReplicationService {
  readonly implementation: pb.ReplicationServiceServer;
  /** Ends every incoming Replicate stream with `status`, so a graceful shutdown is not held open by peers. */
  endStreams(status: RpcStatus): void;
}

/** The ReplicationService handlers: Replicate (task batches), Snapshot and Digest. */
export function createReplicationService(options: ReplicationServiceOptions): ReplicationService {
  const { registry, clock, limiter } = options;
  const log = options.logger.child({ component: 'replication-server' });
  const streams = new Set<grpc.ServerDuplexStream<pb.ReplicateRequest, pb.ReplicateResponse>>();
  /** Open incoming streams per sending node: a node with none is one this node cannot hear from. */
  const openFrom = new Map<string, number>();
  const heard = (via: string, delta: 1 | -1): void => {
    const open = (openFrom.get(via) ?? 0) + delta;
    if (open > 0) openFrom.set(via, open);
    else openFrom.delete(via);
    registry.setPeerReachable(via, open > 0);
  };

  /** One task's result. A task that fails in any way gets its own INVALID result, never the stream's. */
  const answerTask = (wire: pb.ReplicationTask, now: number, via: string | undefined): pb.TaskResult => {
    if (limiter && !limiter.tryTake()) return OVERLOADED;
    try {
      const task = taskFromProto(wire);
      if (typeof task === 'string') return INVALID;
      if (task.originTimestamp > 0) options.observeLag?.(task.action, Math.max(0, now - task.originTimestamp) / 1000);
      const result = taskResultToProto(applyTask(registry, task, via));
      // A conflict's record is encoded now: one that cannot be must fail this task alone, not the whole response.
      if (result.instance !== undefined) pb.TaskResult.encode(result);
      return result;
    } catch (err) {
      log.error({ err }, 'replicated task failed');
      return INVALID;
    }
  };

  const implementation: pb.ReplicationServiceServer = {
    replicate(call) {
      // Headers now, so the sender learns at once that the stream is accepted.
      call.sendMetadata(new grpc.Metadata());
      streams.add(call);
      const via = senderOf(call.metadata);
      if (via !== undefined) heard(via, +1);
      call.once('close', () => {
        streams.delete(call);
        if (via !== undefined) heard(via, -1);
      });
      call.on('data', (request: pb.ReplicateRequest) => {
        if (request.tasks.length > MAX_TASKS_PER_BATCH) {
          log.warn({ peer: call.getPeer(), tasks: request.tasks.length }, 'refused an oversized replication batch');
          call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: `tasks: at most ${MAX_TASKS_PER_BATCH} per batch (got ${request.tasks.length})` });
          return;
        }
        const now = clock.wallNow();
        const results = request.tasks.map((wire) => answerTask(wire, now, via));
        // Backpressure is the server's flow-control interceptor (flow-control.ts): the next
        // batch is read only once this answer has left for the peer.
        call.write(encodeReplicateResponse(request.batchId, results) as unknown as pb.ReplicateResponse);
      });
      call.on('end', () => call.end());
      call.on('error', () => undefined);
    },

    snapshot(call) {
      void (async () => {
        try {
          for (const chunk of snapshotChunks(registry, call.request.apps, options.nodeId)) {
            if (call.cancelled) return;
            if (!call.write(chunk)) await new Promise((resolve) => call.once('drain', resolve));
          }
          call.end();
        } catch (err) {
          call.emit('error', toRpcStatus(err, log));
        }
      })();
    },

    digest(_call, callback) {
      const apps = [...registry.digest()].map(([app, d]) => ({ app, count: d.count, hash: d.hash }));
      callback(null, { nodeId: options.nodeId, apps });
    },
  };

  return {
    implementation,
    endStreams(status) {
      for (const call of streams) if (!call.destroyed && !call.writableEnded) call.emit('error', status);
      streams.clear();
    },
  };
}

/** The sending node's id from its stream's metadata, when it is a plausible node id. */
function senderOf(metadata: grpc.Metadata): string | undefined {
  const value = metadata.get(NODE_ID_HEADER)[0];
  return typeof value === 'string' && /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(value) ? value : undefined;
}
