import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Logger } from 'pino';
import { Counter, type Registry as PromRegistry } from 'prom-client';
import type { Clock } from '../core/clock.js';
import { RegistryError, invalid, type ErrorKind } from '../core/errors.js';
import { reconcileHash } from '../core/registry.js';
import { STATUSES, type Change, type InstanceStatus, type InstanceView, type RegistryApi } from '../core/types.js';
import { BodyTooLarge, readBody, type HttpMount, type RouteParams } from '../http/server.js';
import {
  applicationParts,
  applicationsParts,
  applicationsShape,
  decodeDoc,
  encodeInstance,
  groupByApp,
  instanceElement,
  integer,
  registrationFromDoc,
  type AppGroup,
  type EurekaFormat,
} from './codec.js';
import { BodyCache } from './body-cache.js';
import { DeltaWindow } from './delta-window.js';
import { GzipDocument } from './gzip-document.js';

/** Spring Cloud clients use `/eureka/...`, eureka-js-client `/eureka/v2/...`: both are served. */
export const EUREKA_PREFIXES = ['/eureka', '/eureka/v2'] as const;

export interface EurekaRoutesOptions {
  readonly registry: RegistryApi;
  /** Drives the delta window. */
  readonly clock: Clock;
  readonly logger: Logger;
  /** False while the node may not serve reads (start-up sync): reads answer 403, as Eureka's do. */
  readonly ready?: () => boolean;
  /**
   * How far back `GET apps/delta` reaches. Default 120 s: four of a client's 30 s polls, so a
   * client that misses a few still gets every change; Eureka's 180 s repeats each change in six.
   */
  readonly deltaWindowMs?: number;
  /** Largest register body accepted (413 beyond). */
  readonly maxBodyBytes?: number;
  /** Largest plain full-read body kept per revision; larger plain reads inflate the gzip body. */
  readonly maxPlainBodyBytes?: number;
  /** Where the request counter goes (the node's /metrics registry). */
  readonly metrics?: PromRegistry;
}

/**
 * Plain full-read bodies up to this size are kept per revision, like the gzip ones: a 100k
 * registry of Spring-style records is ~107 MiB plain. A plain body is the gzip body inflated on
 * a thread-pool thread (~0.15 s there at 100k, against ~1.3 s of the event loop to encode the
 * registry again), so repeated plain reads of an unchanged registry only write bytes. The
 * memory is held until the next change. A larger plain read inflates the gzip body as it is
 * written (a 1M registry's plain document is ~1 GiB).
 */
const PLAIN_CACHE_MAX_BYTES = 128 * 1024 * 1024;
/** Output chunk of inflation: large enough that a 100 MiB body is a few hundred writes. */
const INFLATE_CHUNK = 256 * 1024;
const DEFAULTS = { deltaWindowMs: 120_000, maxBodyBytes: 64 * 1024, maxPlainBodyBytes: PLAIN_CACHE_MAX_BYTES };
const DELTA_PAGE = 5000;
/** Instances encoded between two turns of the event loop: a 100k registry never blocks it for long. */
const ENCODE_SLICE = 1000;
const NOT_READY = 'node is starting: not yet synchronised with its peers';

/** A refusal with its HTTP status, for what has no registry error kind (403, 413, 415). */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The one table from domain error kinds to HTTP statuses. */
export const HTTP_STATUS_BY_KIND: Readonly<Record<ErrorKind, number>> = {
  invalid_argument: 400,
  not_found: 404,
  resource_exhausted: 429,
  unavailable: 503,
  unauthenticated: 401,
  failed_precondition: 409,
};

interface Reply {
  readonly status: number;
  readonly body?: string | Buffer;
  readonly contentType?: string;
  /**
   * How `body` goes out: as it is (the default); gzip-compressed, sent with `content-encoding:
   * gzip`; or gzip-compressed and inflated while it is written, for a plain read of a document
   * too large to keep plain (see {@link PLAIN_CACHE_MAX_BYTES}).
   */
  readonly encoding?: 'gzip' | 'inflate';
}

interface Request {
  readonly req: IncomingMessage;
  readonly params: RouteParams;
  readonly query: URLSearchParams;
  /** What the client accepts: JSON when Accept mentions json, else XML (Eureka's rule). */
  readonly format: EurekaFormat;
  readonly acceptsGzip: boolean;
}

/**
 * One endpoint; `name` labels its metrics. Credentials and roles are checked before any route
 * runs, by the HTTP port's access policy (`src/http/access.ts`), for every face alike.
 */
interface Route {
  readonly name: string;
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly path: string;
  handle(request: Request): Reply | Promise<Reply>;
}

const OK: Reply = { status: 200 };
const CONTENT_TYPES: Readonly<Record<EurekaFormat, string>> = { json: 'application/json', xml: 'application/xml' };

/**
 * Eureka's REST protocol on the HTTP port, over the same registry as gRPC: writes go through
 * the same registry methods (so they replicate the same way) and reads see the same revision.
 * See the README's "Eureka REST face" for the endpoint table.
 */
export function eurekaRoutes(options: EurekaRoutesOptions): HttpMount {
  const { registry } = options;
  const log = options.logger.child({ component: 'eureka' });
  const ready = options.ready ?? (() => true);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULTS.maxBodyBytes;
  const maxPlainBodyBytes = options.maxPlainBodyBytes ?? DEFAULTS.maxPlainBodyBytes;
  const fullReads = new BodyCache(maxPlainBodyBytes);
  const window = new DeltaWindow(options.clock, options.deltaWindowMs ?? DEFAULTS.deltaWindowMs);
  registry.subscribe((change: Change) => window.note(change.revision));
  // Every Eureka client polls apps/delta (every 30 s by default): polls between two changes share one body.
  const deltas = new BodyCache(maxPlainBodyBytes);
  // Rebuilt after a change by compressing only the segments that changed (see GzipDocument).
  const gzipDocuments: Readonly<Record<EurekaFormat, GzipDocument>> = { json: new GzipDocument(), xml: new GzipDocument() };
  // Deltas too: a poll compresses only the segments with changes since the last one.
  const deltaDocuments: Readonly<Record<EurekaFormat, GzipDocument>> = { json: new GzipDocument(), xml: new GzipDocument() };
  // Requests by route, then by status: plain numbers handed to prom-client at scrape time (its
  // `inc` builds a label key per call, 0.2-0.3 µs of every heartbeat).
  const requests = new Map<string, Map<number, number>>();
  if (options.metrics) {
    new Counter({
      name: 'roster_eureka_requests_total',
      help: 'Eureka REST requests, by route and HTTP status.',
      labelNames: ['route', 'code'],
      registers: [options.metrics],
      collect() {
        this.reset();
        for (const [route, byCode] of requests) for (const [code, n] of byCode) this.inc({ route, code: String(code) }, n);
      },
    });
  }

  const assertReady = (): void => {
    if (!ready()) throw new HttpError(403, NOT_READY);
  };
  const reply = (body: string | Buffer, format: EurekaFormat): Reply => ({ status: 200, body, contentType: CONTENT_TYPES[format] });
  const instanceParams = (p: RouteParams): [string, string] => [p.app ?? '', p.id ?? ''];

  const routes: Route[] = [
    {
      name: 'register',
      method: 'POST',
      path: 'apps/:app',
      async handle({ req, params }) {
        const format = bodyFormat(req);
        const body = await bodyText(req, maxBodyBytes);
        registry.register(registrationFromDoc(decodeDoc(body, format), format, params.app ?? ''));
        return { status: 204 };
      },
    },
    {
      name: 'heartbeat',
      method: 'PUT',
      path: 'apps/:app/:id',
      handle({ params, query }) {
        // `status` and `overriddenstatus` are the client's view; the registry's rules decide.
        const dirty = integer(query.get('lastDirtyTimestamp'), 'lastDirtyTimestamp') ?? 0;
        const outcome = registry.heartbeat(...instanceParams(params), dirty, 'client');
        return outcome.kind === 'ok' ? OK : { status: 404 };
      },
    },
    {
      name: 'cancel',
      method: 'DELETE',
      path: 'apps/:app/:id',
      handle({ params }) {
        registry.cancel(...instanceParams(params), 'client');
        return OK;
      },
    },
    {
      name: 'status_override',
      method: 'PUT',
      path: 'apps/:app/:id/status',
      handle({ params, query }) {
        const value = query.get('value') ?? '';
        if (!(STATUSES as readonly string[]).includes(value)) {
          throw invalid('value', `must be one of ${STATUSES.join(', ')}, got ${JSON.stringify(value)}`);
        }
        registry.setStatusOverride(...instanceParams(params), value as InstanceStatus);
        return OK;
      },
    },
    {
      name: 'status_clear',
      method: 'DELETE',
      path: 'apps/:app/:id/status',
      handle({ params }) {
        registry.clearStatusOverride(...instanceParams(params));
        return OK;
      },
    },
    {
      name: 'metadata',
      method: 'PUT',
      path: 'apps/:app/:id/metadata',
      handle({ params, query }) {
        const [app, id] = instanceParams(params);
        const set: Record<string, string> = {};
        for (const [key, value] of query) set[key] ??= value; // the first value, as Eureka takes
        if (Object.keys(set).length === 0) registry.get(app, id);
        else registry.updateMetadata(app, id, set, []);
        return OK;
      },
    },
    {
      name: 'apps',
      method: 'GET',
      path: 'apps',
      async handle({ format, acceptsGzip }) {
        assertReady();
        const gzipped = (): Promise<Buffer> =>
          fullReads.get(`${format}+gzip`, () => ({
            version: String(registry.revision),
            build: () => {
              const snapshot = registry.snapshot();
              const shape = applicationsShape(snapshot.revision, snapshot.reconcileHash, format);
              return gzipDocuments[format].build(
                snapshot.instances.map((view) => ({ view })),
                shape,
                (item) => instanceElement(item.view, format),
              );
            },
          }));
        if (acceptsGzip) return { ...reply(await gzipped(), format), encoding: 'gzip' };
        const zipped = await gzipped();
        if (inflatedSize(zipped) > maxPlainBodyBytes) return { ...reply(zipped, format), encoding: 'inflate' };
        // The gzip body of this revision (or a newer one) is at hand: inflating it is the cheapest plain body.
        return reply(await fullReads.get(format, () => ({ version: String(registry.revision), build: async () => inflate(await gzipped()) })), format);
      },
    },
    {
      name: 'delta',
      method: 'GET',
      path: 'apps/delta',
      async handle({ format, acceptsGzip }) {
        assertReady();
        const body = await deltas.get(acceptsGzip ? `${format}+gzip` : format, () => {
          const revision = registry.revision;
          const since = window.since(revision);
          return {
            version: `${since}:${revision}`,
            build: () => {
              const groups = recentChanges(registry, since);
              const hash = reconcileHash(registry.stats().byStatus);
              if (!acceptsGzip) return encodeSliced(applicationsParts(groups, revision, hash, format));
              // Sorted, so that the same changes make the same segments from one poll to the next.
              const items = groups.sort((a, b) => compare(a.app, b.app)).flatMap((group) => [...group.instances].sort((a, b) => compare(a.view.record.instanceId, b.view.record.instanceId)));
              return deltaDocuments[format].build(items, applicationsShape(revision, hash, format), (item) => instanceElement(item.view, format, item.actionType));
            },
          };
        });
        return acceptsGzip ? { ...reply(body, format), encoding: 'gzip' } : reply(body, format);
      },
    },
    {
      name: 'app',
      method: 'GET',
      path: 'apps/:app',
      async handle({ params, format }) {
        assertReady();
        const { instances } = registry.getApplication(params.app ?? '');
        if (instances.length === 0) return { status: 404 };
        return reply(await encodeSliced(applicationParts(groupByApp(instances)[0]!, format)), format);
      },
    },
    {
      name: 'instance',
      method: 'GET',
      path: 'apps/:app/:id',
      handle({ params, format }) {
        assertReady();
        return reply(encodeInstance(registry.get(...instanceParams(params)), format), format);
      },
    },
    {
      name: 'instance_by_id',
      method: 'GET',
      path: 'instances/:id',
      handle({ params, format }) {
        assertReady();
        const [view] = registry.findById(params.id ?? '');
        if (!view) return { status: 404 };
        return reply(encodeInstance(view, format), format);
      },
    },
    ...(['vips', 'svips'] as const).map(
      (kind): Route => ({
        name: kind.slice(0, -1),
        method: 'GET',
        path: `${kind}/:vip`,
        async handle({ params, format }) {
          assertReady();
          const { instances, revision } = registry.listByVip(params.vip ?? '', kind === 'svips');
          return reply(await encodeSliced(applicationsParts(groupByApp(instances), revision, hashOf(instances), format)), format);
        },
      }),
    ),
  ];

  /** Every route passes here: negotiation, error mapping, metrics. */
  const serve = (route: Route) => {
    // One count per route, whichever of the prefixes it is served under.
    const byCode = requests.get(route.name) ?? new Map<number, number>();
    requests.set(route.name, byCode);
    return async (req: IncomingMessage, res: ServerResponse, params: RouteParams): Promise<void> => {
      let answer: Reply;
      try {
        const url = new URL(req.url ?? '/', 'http://localhost');
        const accept = req.headers.accept ?? '';
        answer = await route.handle({
          req,
          params,
          query: url.searchParams,
          format: accept.includes('json') ? 'json' : 'xml',
          acceptsGzip: (req.headers['accept-encoding'] ?? '').includes('gzip'),
        });
      } catch (err) {
        answer = refusal(err, route, log);
      }
      byCode.set(answer.status, (byCode.get(answer.status) ?? 0) + 1);
      send(res, answer, log);
    };
  };

  return (router) => {
    for (const prefix of EUREKA_PREFIXES) {
      for (const route of routes) router.on(route.method, `${prefix}/${route.path}`, serve(route));
    }
  };
}

/** The last change of every instance changed after `since`, by app: what a delta client applies. */
function recentChanges(registry: RegistryApi, since: number): AppGroup[] {
  const byApp = new Map<string, Map<string, Change>>();
  let cursor = since;
  // Bounded: each page moves the cursor forward, and the change log is finite.
  for (;;) {
    const page = registry.delta(cursor, DELTA_PAGE);
    if (page.resyncRequired) {
      // Eureka answers 403 when it cannot serve a delta; clients then fetch the whole registry.
      throw new HttpError(403, 'changes of the delta window are no longer in the change log: fetch the full registry');
    }
    for (const change of page.changes) {
      const { app, instanceId } = change.instance.record;
      let changes = byApp.get(app);
      if (!changes) byApp.set(app, (changes = new Map()));
      changes.set(instanceId, change);
    }
    if (!page.hasMore || page.revision <= cursor) break;
    cursor = page.revision;
  }
  return [...byApp].map(([app, changes]) => ({
    app,
    instances: [...changes.values()].map((c) => ({ view: c.instance, actionType: c.type })),
  }));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function hashOf(instances: readonly InstanceView[]): string {
  const byStatus: Record<InstanceStatus, number> = { UP: 0, DOWN: 0, STARTING: 0, OUT_OF_SERVICE: 0, UNKNOWN: 0 };
  for (const view of instances) byStatus[view.record.status]++;
  return reconcileHash(byStatus);
}

/** Encodes a document from its pieces, yielding to the event loop every {@link ENCODE_SLICE} pieces. */
async function encodeSliced(parts: Iterable<string>): Promise<Buffer> {
  const buffers: Buffer[] = [];
  let slice: string[] = [];
  for (const part of parts) {
    slice.push(part);
    if (slice.length === ENCODE_SLICE) {
      buffers.push(Buffer.from(slice.join('')));
      slice = [];
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
  buffers.push(Buffer.from(slice.join('')));
  return Buffer.concat(buffers);
}

/** Eureka's register takes JSON or XML; anything else (or none) is 415, as Jersey answers. */
function bodyFormat(req: IncomingMessage): EurekaFormat {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json') return 'json';
  if (type === 'application/xml') return 'xml';
  throw new HttpError(415, `content-type must be application/json or application/xml, got ${JSON.stringify(type)}`);
}

/** The request body as text: identity-encoded only (415), at most `limit` bytes (413). */
async function bodyText(req: IncomingMessage, limit: number): Promise<string> {
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding !== 'identity') throw new HttpError(415, `content-encoding ${JSON.stringify(encoding)} is not supported`);
  if (Number(req.headers['content-length'] ?? 0) > limit) throw new HttpError(413, `body larger than ${limit} bytes`);
  try {
    return (await readBody(req, limit)).toString('utf8');
  } catch (err) {
    if (err instanceof BodyTooLarge) throw new HttpError(413, `body larger than ${limit} bytes`);
    throw err;
  }
}

function refusal(err: unknown, route: Route, log: Logger): Reply {
  if (err instanceof HttpError) return { status: err.status, body: `${err.message}\n` };
  if (err instanceof RegistryError && Object.hasOwn(HTTP_STATUS_BY_KIND, err.kind)) {
    return { status: HTTP_STATUS_BY_KIND[err.kind], body: `${err.message}\n` };
  }
  log.error({ err, route: route.name }, 'eureka request failed');
  return { status: 500, body: 'internal error\n' };
}

function send(res: ServerResponse, reply: Reply, log: Logger): void {
  const headers: Record<string, string | number> = {};
  const body = reply.body ?? '';
  if (reply.body !== undefined) headers['content-type'] = reply.contentType ?? 'text/plain; charset=utf-8';
  if (reply.encoding === 'gzip') headers['content-encoding'] = 'gzip';
  // A refused body may be partly unread: close rather than read the rest of it.
  if (reply.status === 413 || reply.status === 415) headers.connection = 'close';
  if (reply.encoding === 'inflate') {
    // The length is only known modulo 2^32 (the gzip trailer): sent chunked.
    res.writeHead(reply.status, headers);
    pipeline(Readable.from([body]), createGunzip({ chunkSize: INFLATE_CHUNK }), res, (err) => {
      // A client that goes away midway is not a failure.
      if (err && (err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') log.error({ err }, 'eureka: inflating a full read failed');
    });
    return;
  }
  headers['content-length'] = Buffer.byteLength(body);
  res.writeHead(reply.status, headers);
  res.end(body);
}

/** A gzip body inflated into one buffer of its size, on a thread-pool thread. */
async function inflate(gzip: Buffer): Promise<Buffer> {
  const body = Buffer.allocUnsafeSlow(inflatedSize(gzip));
  let length = 0;
  for await (const chunk of Readable.from([gzip]).pipe(createGunzip({ chunkSize: INFLATE_CHUNK })) as AsyncIterable<Buffer>) {
    if (length + chunk.length > body.length) throw new Error('gzip body inflates past the size in its trailer');
    length += chunk.copy(body, length);
  }
  if (length !== body.length) throw new Error('gzip body inflates short of the size in its trailer');
  return body;
}

/** A gzip body's uncompressed size (modulo 2^32, from its trailer). */
function inflatedSize(gzip: Buffer): number {
  return gzip.readUInt32LE(gzip.length - 4);
}
