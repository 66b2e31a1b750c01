import type { Logger } from 'pino';
import { SystemClock } from '../core/clock.js';
import { Registry } from '../core/registry.js';
import { startAdminServer } from '../grpc/admin-http.js';
import { createMetrics } from '../grpc/metrics.js';
import { startGrpcServer } from '../grpc/server.js';
import type { Config } from './config.js';
import { createLogger } from './logging.js';

/** A running node: its bound ports (useful with port 0), its registry, and a graceful stop. */
export interface RosterNode {
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly registry: Registry;
  /** Stops accepting, ends calls and streams within `shutdownGraceMs`, closes HTTP, stops the registry. */
  stop(): Promise<void>;
}

/**
 * The composition root: registry, gRPC server, metrics and the admin HTTP server, wired from
 * one validated {@link Config}. Logs "roster started" with the bound ports once serving.
 */
export async function startNode(config: Config, logger: Logger = createLogger(config.logLevel)): Promise<RosterNode> {
  const log = logger.child({ nodeId: config.nodeId });
  const clock = new SystemClock();
  const registry = new Registry({
    clock,
    logger: log,
    leaseRenewalSecs: config.leaseRenewalSecs,
    leaseDurationSecs: config.leaseDurationSecs,
    selfPreservation: config.selfPreservation,
    renewalThresholdPercent: config.renewalThresholdPercent,
    evictionIntervalMs: config.evictionIntervalMs,
    changeLogSize: config.changeLogSize,
  });
  const metrics = createMetrics(registry);
  registry.start();
  let serving = false;
  const grpc = await startGrpcServer({
    registry,
    logger: log,
    host: config.host,
    port: config.port,
    clock,
    limits: { writesPerSecond: config.writesPerSecond, writeBurst: config.writeBurst, maxWatchers: config.maxWatchers },
    ready: () => serving,
    observer: metrics.observer,
  }).catch((err: unknown) => {
    registry.stop();
    throw err;
  });
  const admin = await startAdminServer({
    host: config.host,
    port: config.httpPort,
    metrics,
    logger: log,
    health: () => {
      const stats = registry.stats();
      return {
        live: true,
        ready: serving,
        details: { nodeId: config.nodeId, instances: stats.size, revision: stats.revision, selfPreservation: stats.selfPreservation },
      };
    },
  }).catch(async (err: unknown) => {
    await grpc.shutdown(0);
    registry.stop();
    throw err;
  });
  serving = true;
  grpc.setServing(true);
  log.info({ grpcPort: grpc.port, httpPort: admin.port, host: config.host }, 'roster started');

  let stopping: Promise<void> | undefined;
  const stop = async (): Promise<void> => {
    serving = false;
    grpc.setServing(false);
    try {
      await grpc.shutdown(config.shutdownGraceMs);
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
    stop: () => (stopping ??= stop()),
  };
}
