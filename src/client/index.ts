export { RosterClient } from './roster-client.js';
export type {
  ApplicationsSnapshot,
  CallOpts,
  RosterClientOptions,
  WatchFilter,
  WatchOptions,
} from './roster-client.js';
export { InstanceAgent } from './instance-agent.js';
export type { InstanceAgentOptions } from './instance-agent.js';
export { HeartbeatStream } from './heartbeat-stream.js';
export type { HeartbeatStreamOptions } from './heartbeat-stream.js';
export { isRetryable, isServiceError } from './errors.js';
export type { BackoffOptions } from './backoff.js';
export { DiscoveryCache } from './discovery.js';
export type { CacheChange, DiscoveryCacheOptions, DiscoveryEvents } from './discovery.js';
export { registerRosterResolver } from './resolver.js';
export type { RosterResolverHandle, RosterResolverOptions } from './resolver.js';
export { ChangeType, InstanceStatus } from '../gen/roster/v1/instance.js';
export type { Instance } from '../gen/roster/v1/instance.js';
