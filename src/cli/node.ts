import { randomBytes } from 'node:crypto';
import { status, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { SystemClock } from '../core/clock.js';
import { Registry } from '../core/registry.js';
import { adminRoutes } from '../admin/routes.js';
import { createDashboard } from '../dashboard/dashboard.js';
import { eurekaRoutes } from '../eureka/routes.js';
import { startHttpServer } from '../http/server.js';
import { createMetrics } from '../grpc/metrics.js';
import { ReplicationServiceService } from '../gen/roster/v1/replication_service.js';
import { GrpcPeerLink, peerCredentials } from '../grpc/peer-link.js';
import { TokenBucket } from '../grpc/rate-limit.js';
import { addReplicationMetrics } from '../grpc/replication-metrics.js';
import { createReplicationService } from '../grpc/replication-service.js';
import { addSecurityMetrics } from '../grpc/security-metrics.js';
import { startGrpcServer, type GrpcServerHandle } from '../grpc/server.js';
import { CredentialsError } from '../security/credentials-file.js';
import { PolicySource, SecretFileError } from '../security/policy-source.js';
import { TlsError, TlsMaterial } from '../security/tls-material.js';
import { dnsPeers, staticPeers } from '../replication/peers.js';
import { Replicator, type PeersReport } from '../replication/replicator.js';
import { createXdsService } from '../xds/service.js';
import { ConfigError, type Config } from './config.js';
import { HeapGrowth } from './heap-growth.js';
import { createLogger } from './logging.js';
import { ROSTER_VERSION } from './version.js';

/** Replication gets this long to flush its queues at shutdown, within the grace period. */
const REPLICATION_FLUSH_MS = 2000;

/** A running node: its bound ports (useful with port 0), its registry, and a graceful stop. */
export interface RosterNode {
  readonly grpcPort: number;
  readonly httpPort: number;
  /** The HTTP port's routes, `METHOD /path` (each has a role in src/http/access.ts). */
  readonly httpRoutes: readonly string[];
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
    peerHoldMs: config.peerHoldSecs * 1000,
    maxInstances: config.maxInstances,
    maxInstancesPerApp: config.maxInstancesPerApp,
    maxMetadataBytes: config.maxMetadataBytes,
    digests: config.peers !== '' || config.peersDns !== '',
  });
  const clusterToken = config.clusterToken === '' ? undefined : config.clusterToken;
  // Unreadable or unusable TLS material or secrets are configuration errors (exit 2), naming the file.
  const { tls, access } = asConfigError(() => {
    const tls =
      config.tlsCertFile !== '' ? new TlsMaterial({ certFile: config.tlsCertFile, keyFile: config.tlsKeyFile, ...(config.tlsCaFile !== '' ? { caFile: config.tlsCaFile } : {}) }, log) : undefined;
    const access = new PolicySource({
      ...(config.credentialsFile !== '' ? { credentialsFile: config.credentialsFile } : {}),
      ...(clusterToken !== undefined ? { clusterToken } : {}),
      ...(config.clusterTokenFile !== '' ? { clusterTokenFile: config.clusterTokenFile } : {}),
      mtls: tls?.hasCa === true && config.tlsClientAuth === 'require',
      logger: log,
    });
    return { tls, access };
  });
  if (access.policy.open) {
    // Said once; calmly for a standalone node (a laptop, a test), loudly when peers replicate unauthenticated.
    const standalone = config.peers === '' && config.peersDns === '';
    log[standalone ? 'info' : 'warn']('open node: no credentials configured, anyone who reaches its ports can register, change and cancel instances and replicate into it');
  } else if (!access.policy.enforces('register')) log.warn('clients are not authenticated: only replication needs a credential (see credentialsFile)');
  const linkCredentials = peerCredentials(tls);
  replicator = new Replicator({
    nodeId: config.nodeId,
    registry,
    clock,
    logger: log,
    connect: (address) =>
      new GrpcPeerLink(address, {
        token: () => access.clusterToken,
        nodeId: config.nodeId,
        credentials: linkCredentials,
        ...(config.peerTlsServerName !== '' ? { serverName: config.peerTlsServerName } : {}),
      }),
    resolvePeers: config.peersDns !== '' ? dnsPeers(config.peersDns) : staticPeers(config.peers),
    selfAddresses: selfAddresses(config),
    peerRefreshMs: config.peerRefreshSecs * 1000,
    antiEntropyIntervalMs: config.antiEntropySecs * 1000,
    startupWaitMs: config.startupWaitSecs * 1000,
    // Health says SERVING the moment reads may be served, not at the next periodic recheck.
    onReady: () => grpcHandle?.setServing(serving),
    // Batches leave at the end of the I/O turn that queued them: no timer added to the lag.
    dispatcher: { maxQueue: config.replicationQueueSize, flushDelayMs: 0 },
  });
  const metrics = createMetrics(registry, { version: ROSTER_VERSION });
  const observeLag = addReplicationMetrics(metrics, replicator);
  const dashboard = createDashboard({ registry, clock, logger: log, nodeId: config.nodeId, version: ROSTER_VERSION, peers: () => replicator.peers(), ready: () => replicator.ready });
  let grpcHandle: GrpcServerHandle | undefined;
  const securityMetrics = addSecurityMetrics(metrics, () => grpcHandle?.connectionStats());
  const replication = createReplicationService({
    registry,
    nodeId: config.nodeId,
    clock,
    logger: log,
    limiter: new TokenBucket({ ratePerSecond: config.replicationTasksPerSecond, burst: config.replicationTasksPerSecond, clock }),
    observeLag: (action, seconds) => {
      observeLag(action, seconds);
      dashboard.observeLag(seconds);
    },
  });
  const xds = createXdsService({ registry, logger: log, metrics: metrics.registry });
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
    snapshotCache: { maxBytes: config.fullReadCacheMib * 1024 * 1024 },
    ready: () => serving && replicator.ready,
    // Revisions start over when the node restarts: a cursor from before must not match.
    nodeId: `${config.nodeId}@${randomBytes(4).toString('hex')}`,
    observer: metrics.observer,
    ...(tls ? { tls, clientAuth: config.tlsClientAuth } : {}),
    policy: () => access.policy,
    onRefused: securityMetrics.grpcRefused,
    connectionLimits: {
      maxConnections: config.maxConnections,
      maxConnectionsPerAddress: config.maxConnectionsPerAddress,
      maxCalls: config.maxCalls,
      maxCallsPerConnection: config.maxCallsPerConnection,
      idleMs: config.idleConnectionSecs * 1000,
    },
    extraServices: [
      { definition: ReplicationServiceService, implementation: replication.implementation as unknown as UntypedServiceImplementation },
      { definition: xds.definition, implementation: xds.implementation },
    ],
  }).catch((err: unknown) => {
    xds.close({ code: status.UNAVAILABLE, details: 'server failed to start' });
    registry.stop();
    dashboard.close();
    throw err;
  });
  grpcHandle = grpc;
  const admin = await startHttpServer({
    host: config.httpHost !== '' ? config.httpHost : config.host,
    port: config.httpPort,
    logger: log,
    ...(tls && config.httpTls ? { tls, clientAuth: config.httpTlsClientAuth } : {}),
    policy: () => access.policy,
    onRefused: securityMetrics.httpRefused,
    maxHeaderBytes: config.httpMaxHeaderBytes,
    maxBodyBytes: config.httpMaxBodyBytes,
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
      eurekaRoutes({
        registry,
        clock,
        logger: log,
        ready: () => serving && replicator.ready,
        metrics: metrics.registry,
        maxPlainBodyBytes: config.eurekaPlainCacheMib * 1024 * 1024,
      }),
      dashboard.mount,
    ],
  }).catch(async (err: unknown) => {
    await grpc.shutdown(0);
    registry.stop();
    dashboard.close();
    throw err;
  });
  serving = true;
  grpc.setServing(true);
  tls?.watch(config.tlsReloadSecs * 1000);
  access.watch(config.tlsReloadSecs * 1000);
  await replicator.start();
  // V8's heap growth bounded while the heap is large: a 1M node within 1 GiB and short major GCs, no flag needed.
  const heapGrowth = new HeapGrowth({ logger: log });
  heapGrowth.start();
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
      xds.close({ code: status.UNAVAILABLE, details: 'server shutting down' });
      await replicator.stop(Math.min(config.shutdownGraceMs, REPLICATION_FLUSH_MS));
      await closing;
    } finally {
      heapGrowth.stop();
      dashboard.close();
      await admin.close();
      tls?.close();
      access.close();
      registry.stop();
      log.info('roster stopped');
    }
  };
  return {
    grpcPort: grpc.port,
    httpPort: admin.port,
    httpRoutes: admin.routes,
    registry,
    replicator,
    stop: () => (stopping ??= stop()),
  };
}

function asConfigError<T>(load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (err instanceof TlsError || err instanceof CredentialsError || err instanceof SecretFileError) throw new ConfigError(err.message);
    throw err;
  }
}

/** Addresses that surely are this node; others are recognised by node id when dialled. */
function selfAddresses(config: Config): string[] {
  const wildcard = config.host === '0.0.0.0' || config.host === '::';
  const hosts = wildcard ? ['127.0.0.1', 'localhost'] : [config.host];
  return hosts.map((h) => `${h}:${config.port}`);
}
