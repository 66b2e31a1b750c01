import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type FindMyWayModule from 'find-my-way';
import type { Logger } from 'pino';
import { AccessPolicy } from '../security/access.js';
import type { TlsMaterial } from '../security/tls-material.js';
import { decideRequest } from './access.js';

/**
 * find-my-way is CommonJS: imported from ESM, Node scans its 37 KB source for export names, and
 * that scan ran long enough for V8 to optimise the scanner, about 5 MiB of RSS an idle node kept.
 * Required, it is not scanned.
 */
const FindMyWay = createRequire(import.meta.url)('find-my-way') as typeof FindMyWayModule;

/** The router every HTTP face mounts its routes on (find-my-way, as used by fastify). */
export type HttpRouter = FindMyWayModule.Instance<FindMyWayModule.HTTPVersion.V1>;

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
  /** Serve HTTPS with this material (reloaded for new handshakes when the files change). */
  readonly tls?: TlsMaterial;
  /** With `tls` and a CA: ask for client certificates (`optional`, the default: probes carry none) or `require` them. */
  readonly clientAuth?: 'require' | 'optional' | 'none';
  /** Who may do what, read per request; default open. See {@link routeNeed} for the roles of each route. */
  readonly policy?: () => AccessPolicy;
  /** Told of every request refused for its credential (401) or roles (403). */
  readonly onRefused?: (method: string, code: 401 | 403) => void;
  /** Largest request head (431 beyond); default 16 KiB. */
  readonly maxHeaderBytes?: number;
  /** Largest declared request body (413 beyond, before any face reads it); default 1 MiB. Faces read bodies with {@link readBody}. */
  readonly maxBodyBytes?: number;
}

/** Sent with every response: nothing is sniffed, framed or leaks its URL to another site. */
const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};
/** Methods worth a metrics label; anything else is `other` (labels must stay few). */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
const OPEN = AccessPolicy.open();

export interface HttpServer {
  readonly port: number;
  /** Every mounted route as `METHOD /path/:param`, e.g. for a test that each one has a documented role. */
  readonly routes: readonly string[];
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

  const policy = options.policy ?? (() => OPEN);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const handle: RequestListener = (req, res) => {
    try {
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
      const declared = Number(req.headers['content-length'] ?? 0);
      if (!(declared <= maxBodyBytes)) {
        res.setHeader('connection', 'close');
        sendText(res, 413, `request body too large: at most ${maxBodyBytes} bytes\n`);
        return;
      }
      const path = (req.url ?? '/').split('?')[0]!;
      const crossSite = crossSiteWrite(req);
      if (crossSite !== undefined) {
        options.onRefused?.(KNOWN_METHODS.has(req.method ?? '') ? req.method! : 'other', 403);
        sendText(res, 403, `${crossSite}\n`);
        return;
      }
      const decision = decideRequest(policy(), req, req.method ?? 'GET', path);
      if (decision !== undefined && !decision.allowed) {
        const code = decision.code === 'unauthenticated' ? 401 : 403;
        options.onRefused?.(KNOWN_METHODS.has(req.method ?? '') ? req.method! : 'other', code);
        // Browsers then ask for a user and password: the token goes in the password.
        if (code === 401) res.setHeader('www-authenticate', 'Basic realm="roster", charset="UTF-8"');
        sendText(res, code, `${decision.message}\n`);
        return;
      }
      const result: unknown = router.lookup(req, res);
      if (result instanceof Promise) result.catch((err: unknown) => fail(err, req, res));
    } catch (err) {
      fail(err, req, res);
    }
  };
  const maxHeaderSize = options.maxHeaderBytes ?? 16 * 1024;
  const tls = options.tls;
  const clientAuth = options.clientAuth ?? 'optional';
  const tlsOptions = (pem: TlsMaterial['pem']) => ({ cert: pem.cert, key: pem.key, ...(pem.ca ? { ca: pem.ca } : {}) });
  const server = tls
    ? createHttpsServer({ ...tlsOptions(tls.pem), maxHeaderSize, requestCert: tls.hasCa && clientAuth !== 'none', rejectUnauthorized: tls.hasCa && clientAuth === 'require' }, handle)
    : createServer({ maxHeaderSize }, handle);
  // New handshakes take new material; open connections keep theirs.
  const unwatch = tls?.onChange((pem) => (server as ReturnType<typeof createHttpsServer>).setSecureContext(tlsOptions(pem)));
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
  log.info({ host, port, tls: tls ? (tls.hasCa ? `mtls:${clientAuth}` : 'tls') : 'plaintext' }, 'http listening');

  const routes = (router as unknown as { routes: Array<{ method: string; path: string }> }).routes.map((r) => `${r.method} ${r.path}`);
  return {
    port,
    routes,
    close: () =>
      new Promise<void>((resolve, reject) => {
        unwatch?.();
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

/**
 * A browser write from another site (its `Origin` is not this host, or `Sec-Fetch-Site` says
 * cross-site), refused so a page elsewhere cannot ride on credentials the browser cached for
 * the dashboard. Programs (Eureka clients, curl) send neither header.
 */
function crossSiteWrite(req: IncomingMessage): string | undefined {
  if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return undefined;
  if (req.headers['sec-fetch-site'] === 'cross-site') return 'cross-site write refused';
  const origin = req.headers.origin;
  if (origin === undefined || origin === 'null') return origin === 'null' ? 'cross-site write refused' : undefined;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return 'cross-site write refused: malformed Origin';
  }
  return host === req.headers.host ? undefined : 'cross-site write refused';
}

/** Writes a whole response with its length; HEAD gets the headers only. */
export function send(res: ServerResponse, code: number, contentType: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(code, { ...headers, 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** Reads a request body of at most `maxBytes`; beyond it, throws {@link BodyTooLarge} (answer 413). */
export async function readBody(req: IncomingMessage, maxBytes: number = DEFAULT_MAX_BODY_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new BodyTooLarge(maxBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** A request body beyond the limit; answer 413. */
export class BodyTooLarge extends Error {
  override readonly name = 'BodyTooLarge';
  constructor(readonly maxBytes: number) {
    super(`request body too large: at most ${maxBytes} bytes`);
  }
}

export function sendText(res: ServerResponse, code: number, text: string): void {
  send(res, code, 'text/plain; charset=utf-8', text);
}

export function sendJson(res: ServerResponse, code: number, value: unknown): void {
  send(res, code, 'application/json', `${JSON.stringify(value)}\n`);
}
