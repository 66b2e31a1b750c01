import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import FindMyWay from 'find-my-way';
import type { Logger } from 'pino';

/** The router every HTTP face mounts its routes on (find-my-way, as used by fastify). */
export type HttpRouter = FindMyWay.Instance<FindMyWay.HTTPVersion.V1>;

/** Route parameters as find-my-way parses them (`/apps/:app` → `{ app }`). */
export type RouteParams = Readonly<Record<string, string | undefined>>;

/** A face's contribution to the HTTP port: it adds its routes to the router. */
export type HttpMount = (router: HttpRouter) => void;

export interface HttpServerOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** 0 picks an ephemeral port. */
  readonly port: number;
  readonly logger: Logger;
  /** Each face's routes (admin, Eureka REST, dashboard), mounted in order. */
  readonly mounts: readonly HttpMount[];
}

export interface HttpServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The node's HTTP port: node:http plus one router that the faces mount on. Unknown paths get
 * 404, known paths with another method 405 (find-my-way's default route tells them apart only
 * by lookup, so we check). A handler that throws answers 500 and logs the cause.
 */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const log = options.logger.child({ component: 'http' });
  const host = options.host ?? '127.0.0.1';
  const router: HttpRouter = FindMyWay({
    ignoreTrailingSlash: true,
    caseSensitive: true,
    maxParamLength: 512,
    defaultRoute: (req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      const allowed = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'].filter((m) => router.hasRoute(m as 'GET', path) || router.find(m as 'GET', path) !== null);
      if (allowed.length > 0) {
        res.setHeader('allow', allowed.join(', '));
        sendText(res, 405, 'method not allowed\n');
      } else {
        sendText(res, 404, 'not found\n');
      }
    },
    onBadUrl: (path, _req, res) => sendText(res, 400, `bad url: ${path}\n`),
  });
  for (const mount of options.mounts) mount(router);

  const server = createServer((req, res) => {
    try {
      const result: unknown = router.lookup(req, res);
      if (result instanceof Promise) result.catch((err: unknown) => fail(err, req, res));
    } catch (err) {
      fail(err, req, res);
    }
  });
  const fail = (err: unknown, req: IncomingMessage, res: ServerResponse): void => {
    log.error({ err, method: req.method, url: req.url }, 'http request failed');
    if (!res.headersSent) sendText(res, 500, 'internal error\n');
    else res.destroy();
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ host, port }, 'http listening');

  return {
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => {
          if (err) reject(err);
          else {
            log.info({ port }, 'http stopped');
            resolve();
          }
        });
        server.closeAllConnections();
      }),
  };
}

/** Writes a whole response with its length; HEAD gets the headers only. */
export function send(res: ServerResponse, code: number, contentType: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(code, { ...headers, 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

export function sendText(res: ServerResponse, code: number, text: string): void {
  send(res, code, 'text/plain; charset=utf-8', text);
}

export function sendJson(res: ServerResponse, code: number, value: unknown): void {
  send(res, code, 'application/json', `${JSON.stringify(value)}\n`);
}
