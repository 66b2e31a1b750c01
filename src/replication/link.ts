import type { Tombstone } from '../core/registry.js';
import type { InstanceRecord } from '../core/types.js';

/** A replicated write. REGISTER carries the full record; the others only its identity and version. */
export type ReplicationTask =
  | { readonly action: 'register'; readonly record: InstanceRecord; readonly originTimestamp: number }
  | {
      readonly action: 'heartbeat' | 'cancel';
      readonly app: string;
      readonly instanceId: string;
      readonly lastDirtyTimestamp: number;
      readonly originTimestamp: number;
    };

/** A peer's answer to one task. */
export type TaskResult =
  | { readonly code: 'ok' }
  | { readonly code: 'not_found' }
  | { readonly code: 'conflict'; readonly record: InstanceRecord }
  | { readonly code: 'invalid'; readonly message: string }
  | { readonly code: 'overloaded' };

/** Why a Replicate stream ended. `undefined` means the peer closed it cleanly. */
export interface LinkError {
  readonly kind: 'overloaded' | 'unauthenticated' | 'unavailable' | 'other';
  readonly message: string;
}

/** One open Replicate stream. */
export interface ReplicateStream {
  send(batchId: number, tasks: readonly ReplicationTask[]): void;
  close(): void;
}

export interface ReplicateHandlers {
  /** The peer accepted the stream (it is authenticated and listening). */
  onOpen(): void;
  /** Results for one batch, one per task, in order. */
  onResults(batchId: number, results: readonly TaskResult[]): void;
  /** Called once when the stream ends, for whatever reason. */
  onClose(error: LinkError | undefined): void;
}

export interface PeerDigest {
  readonly nodeId: string;
  readonly apps: ReadonlyMap<string, { count: number; hash: string }>;
}

export interface PeerSnapshot {
  readonly nodeId: string;
  readonly records: readonly { record: InstanceRecord; leaseRemainingMs: number }[];
  readonly tombstones: readonly Pick<Tombstone, 'app' | 'instanceId' | 'lastDirtyTimestamp' | 'cancelled'>[];
}

/**
 * How replication reaches one peer. The gRPC implementation lives in src/grpc; tests use an
 * in-memory one, so every replication rule runs on a fake clock.
 */
export interface PeerLink {
  readonly address: string;
  replicate(handlers: ReplicateHandlers): ReplicateStream;
  digest(): Promise<PeerDigest>;
  snapshot(apps: readonly string[]): Promise<PeerSnapshot>;
  /**
   * Calls `callback` once when the peer becomes reachable again (the transport reconnected),
   * so a stream waiting out its backoff is redialled at once. Returns a cancel function.
   */
  onReachable?(callback: () => void): () => void;
  close(): void;
}
