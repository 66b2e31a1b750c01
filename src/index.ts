/**
 * Roster as a library: embed a node (registry, gRPC server, replication) or use the pieces.
 * The client library is `src/client/index.ts`; the command line is `src/cli/main.ts`.
 */
export { startNode } from './cli/node.js';
export type { RosterNode } from './cli/node.js';
export { resolveConfig, loadConfig, ConfigError } from './cli/config.js';
export type { Config } from './cli/config.js';
export { Registry, reconcileHash } from './core/registry.js';
/** Stored records keep some fields as getters: copy one with this, not with a spread. */
export { recordFields } from './core/entry.js';
export type { RegistryOptions, ApplyOutcome, Tombstone } from './core/registry.js';
export { SystemClock, FakeClock } from './core/clock.js';
export type { Clock, TimerHandle } from './core/clock.js';
export { RegistryError } from './core/errors.js';
export type { ErrorKind } from './core/errors.js';
export type {
  Change,
  ChangeType,
  InstanceRecord,
  InstanceStatus,
  InstanceView,
  LeaseTimes,
  RegistrationInput,
  RegistryApi,
  RegistryStats,
} from './core/types.js';
export { startGrpcServer } from './grpc/server.js';
export type { GrpcServerHandle, GrpcServerOptions, RpcObserver } from './grpc/server.js';
export { Replicator } from './replication/replicator.js';
export type { ReplicatorOptions, PeerStatus } from './replication/replicator.js';
export * as client from './client/index.js';
