import { randomBytes } from 'node:crypto';
import { status, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { SystemClock } from '../core/clock.js';
import { Registry } from '../core/registry.js';
import { adminRoutes } from '../admin/routes.js';
import { startHttpServer } from '../http/server.js';
import { createMetrics } from '../grpc/metrics.js';
import { ReplicationServiceService } from '../gen/roster/v1/replication_service.js';
import { GrpcPeerLink } from '../grpc/peer-link.js';
import { TokenBucket } from '../grpc/rate-limit.js';
import { addReplicationMetrics } from '../grpc/replication-metrics.js';
import { createReplicationService } from '../grpc/replication-service.js';
import { startGrpcServer } from '../grpc/server.js';
import { dnsPeers, staticPeers } from '../replication/peers.js';
import { Replicator, type PeersReport } from '../replication/replicator.js';
import type { Config } from './config.js';
import { createLogger } from './logging.js';
import { ROSTER_VERSION } from './version.js';

/** Replication gets this long to flush its queues at shutdown, within the grace period. */
const REPLICATION_FLUSH_MS = 2000;

/** A running node: its bound ports (useful with port 0), its registry, and a graceful stop. */
export interface RosterNode {
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly registry: Registry;
  readonly replicator: Replicator;
  /** Stops accepting, ends calls and streams within `shutdownGraceMs`, closes HTTP, stops the registry. */
  stop(): Promise<void>;
}

/**
 * The composition root: registry, gRPC server, metrics and the admin HTTP server, wired from
 * one validated {@link Config}. Logs "roster started" with the bound ports once serving.
 */
export async function startNode(config: Config, logger: Logger = createLogger(config.logLevel, 1, config.logFormat)): Promise<RosterNode> {
  const log = logger.child({ nodeId: config.nodeId });
  const clock = new SystemClock();
  let replicator: Replicator | undefined;
  const registry = new Registry({
    clock,
    logger: log,
    onLocalWrite: (write) => replicator?.publish(write),
    leaseRenewalSecs: config.leaseRenewalSecs,
    leaseDurationSecs: config.leaseDurationSecs,
    selfPreservation: config.selfPreservation,
    renewalThresholdPercent: config.renewalThresholdPercent,
    selfPreservationMinLapsed: config.selfPreservationMinLapsed,
    maxClockSkewMs: config.maxClockSkewSecs * 1000,
    evictionIntervalMs: config.evictionIntervalMs,
    changeLogSize: config.changeLogSize,
  });
  const token = config.clusterToken === '' ? undefined : config.clusterToken;
  if (token === undefined) {
    // Said once, calmly, where it matters: a standalone node has no peers to authenticate.
    if (config.peers === '' && config.peersDns === '') log.info('standalone node: no cluster token needed until peers are added (--cluster-token)');
    else log.warn('no cluster token configured: any client can replicate into this node');
  }
  replicator = new Replicator({
    nodeId: config.nodeId,
    registry,
    clock,
    logger: log,
    connect: (address) => new GrpcPeerLink(address, { token }),
    resolvePeers: config.peersDns !== '' ? dnsPeers(config.peersDns) : staticPeers(config.peers),
    selfAddresses: selfAddresses(config),
    peerRefreshMs: config.peerRefreshSecs * 1000,
    antiEntropyIntervalMs: config.antiEntropySecs * 1000,
    startupWaitMs: config.startupWaitSecs * 1000,
    dispatcher: { maxQueue: config.replicationQueueSize },
  });
  const metrics = createMetrics(registry, { version: ROSTER_VERSION });
  const observeLag = addReplicationMetrics(metrics, replicator);
  const replication = createReplicationService({
    registry,
    nodeId: config.nodeId,
    token,
    clock,
    logger: log,
    limiter: new TokenBucket({ ratePerSecond: config.replicationTasksPerSecond, burst: config.replicationTasksPerSecond, clock }),
    observeLag,
  });
  registry.start();
  let serving = false;
  const peersReport = (): PeersReport => ({ nodeId: config.nodeId, ready: replicator.ready, peers: replicator.peers() });
  const grpc = await startGrpcServer({
    registry,
    logger: log,
    host: config.host,
    port: config.port,
    clock,
    limits: { writesPerSecond: config.writesPerSecond, writeBurst: config.writeBurst, maxWatchers: config.maxWatchers },
    ready: () => serving && replicator.ready,
    // Revisions start over when the node restarts: a cursor from before must not match.
    nodeId: `${config.nodeId}@${randomBytes(4).toString('hex')}`,
    observer: metrics.observer,
    extraServices: [{ definition: ReplicationServiceService, implementation: replication.implementation as unknown as UntypedServiceImplementation }],
  }).catch((err: unknown) => {
    registry.stop();
    throw err;
  });
  const admin = await startHttpServer({
    host: config.host,
    port: config.httpPort,
    logger: log,
    mounts: [
      adminRoutes({
        metrics,
        json: { '/peers': peersReport },
        health: () => {
          const stats = registry.stats();
          const peers = replicator.peers();
          return {
            live: true,
            ready: serving && replicator.ready,
            details: {
              nodeId: config.nodeId,
              instances: stats.size,
              revision: stats.revision,
              selfPreservation: stats.selfPreservation,
              renewalsLastMinute: stats.renewalsLastMinute,
              expectedRenewalsPerMinute: stats.expectedRenewalsPerMinute,
              lapsedInstances: stats.lapsedInstances,
              replication: { synced: replicator.ready, peers: peers.length, connected: peers.filter((p) => p.connected).length },
            },
          };
        },
      }),
    ],
  }).catch(async (err: unknown) => {
    await grpc.shutdown(0);
    registry.stop();
    throw err;
  });
  serving = true;
  grpc.setServing(true);
  await replicator.start();
  log.info({ grpcPort: grpc.port, httpPort: admin.port, host: config.host }, 'roster started');

  let stopping: Promise<void> | undefined;
  const stop = async (): Promise<void> => {
    serving = false;
    grpc.setServing(false);
    try {
      // Stop taking calls (client streams end UNAVAILABLE, peers' streams too), and meanwhile
      // flush what this node still owes its peers, each within its bound.
      const closing = grpc.shutdown(config.shutdownGraceMs);
      replication.endStreams({ code: status.UNAVAILABLE, details: 'server shutting down' });
      await replicator.stop(Math.min(config.shutdownGraceMs, REPLICATION_FLUSH_MS));
      await closing;
    } finally {
      await admin.close();
      registry.stop();
      log.info('roster stopped');
    }
  };
  return {
    grpcPort: grpc.port,
    httpPort: admin.port,
    registry,
    replicator,
    stop: () => (stopping ??= stop()),
  };
}

/** Addresses that surely are this node; others are recognised by node id when dialled. */
function selfAddresses(config: Config): string[] {
  const wildcard = config.host === '0.0.0.0' || config.host === '::';
  const hosts = wildcard ? ['127.0.0.1', 'localhost'] : [config.host];
  return hosts.map((h) => `${h}:${config.port}`);
}
