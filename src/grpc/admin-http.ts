import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.js';

/** A node's health as the caller sees it; `details` must carry self-preservation and registry size. */
export interface AdminHealth {
  readonly live: boolean;
  readonly ready: boolean;
  readonly details: Record<string, unknown>;
}

export interface AdminServerOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** 0 picks an ephemeral port. */
  readonly port: number;
  readonly metrics: Metrics;
  readonly health: () => AdminHealth;
  readonly logger: Logger;
  /** More read-only JSON endpoints by path (e.g. /peers). */
  readonly json?: Readonly<Record<string, () => unknown>>;
}

export interface AdminServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The HTTP side port: /healthz (liveness), /readyz (503 until the node may serve reads),
 * /metrics (Prometheus text) and any extra JSON endpoints, with node:http only.
 */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const log = options.logger.child({ component: 'admin-http' });
  const host = options.host ?? '127.0.0.1';

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://admin').pathname;
    const json = Object.hasOwn(options.json ?? {}, path) ? options.json![path] : undefined;
    if (path !== '/healthz' && path !== '/readyz' && path !== '/metrics' && !json) {
      send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    if (json) {
      send(res, 200, 'application/json', `${JSON.stringify(json())}\n`);
      return;
    }
    if (path === '/metrics') {
      send(res, 200, options.metrics.registry.contentType, await options.metrics.render());
      return;
    }
    const { live, ready, details } = options.health();
    const ok = path === '/healthz' ? live : ready;
    const state = path === '/healthz' ? (live ? 'ok' : 'unhealthy') : ready ? 'ready' : 'not ready';
    send(res, ok ? 200 : 503, 'application/json', `${JSON.stringify({ status: state, ...details })}\n`);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err, url: req.url }, 'admin request failed');
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ host, port }, 'admin http listening');

  return {
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => {
          if (err) reject(err);
          else {
            log.info({ port }, 'admin http stopped');
            resolve();
          }
        });
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, code: number, contentType: string, body: string): void {
  res.writeHead(code, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
