import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../core/clock.js';
import { recordFields } from '../core/entry.js';
import { RegistryError } from '../core/errors.js';
import type { InstanceStatus, InstanceView, RegistryApi } from '../core/types.js';
import { STATUSES } from '../core/types.js';
import { checkApp, checkInstanceId } from '../core/validate.js';
import { send, sendJson, type HttpMount, type RouteParams } from '../http/server.js';
import { AppIndex, summarise } from './app-index.js';
import { EventFeed, type FeedOptions } from './feed.js';
import { History } from './history.js';
import { BadRequest, intParam, jsonBody, queryOf, statusValue, textParam } from './params.js';
import { loadStaticFiles } from './static-files.js';

/** A peer as the overview shows it (a subset of the replicator's per-peer report). */
export interface DashboardPeer {
  readonly peer: string;
  readonly connected: boolean;
  readonly queueDepth: number;
  readonly inFlight: number;
  readonly dropped: number;
  readonly expired: number;
  readonly retries: number;
  readonly lastError: string | undefined;
}

/** The operator actions, each its own route, so a role check can be added per action. */
export type DashboardAction = 'set-override' | 'clear-override' | 'cancel';

/** What a guard decides for one action request. */
export type GuardVerdict = { readonly allowed: true } | { readonly allowed: false; readonly status: 401 | 403; readonly message: string };

/**
 * Decides whether a request may perform an action (e.g. "holds the operate role"). The
 * dashboard has no notion of credentials; the composition root passes one in when it has them.
 */
export type ActionGuard = (req: IncomingMessage, action: DashboardAction) => GuardVerdict | Promise<GuardVerdict>;

export interface DashboardOptions {
  readonly registry: RegistryApi;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly nodeId: string;
  /** Shown in the header (default: package.json's version). */
  readonly version?: string;
  /** Replication state per peer (default: none, a single node). */
  readonly peers?: () => readonly DashboardPeer[];
  /** Whether the node serves reads yet (start-up sync). Default: always. */
  readonly ready?: () => boolean;
  /** Checked before every operator action; default: every action is allowed. */
  readonly guard?: ActionGuard;
  /** How often the overview is sampled and pushed to browsers (default 2 s). */
  readonly tickMs?: number;
  /** Samples kept for the sparklines (default 150: five minutes at 2 s). */
  readonly historyLength?: number;
  readonly feed?: Omit<FeedOptions, 'logger'>;
}

/** The dashboard face: its routes, the lag observer it needs fed, and its shutdown. */
export interface Dashboard {
  readonly mount: HttpMount;
  /** Feed every replicated write's lag here (the replication service's `observeLag`). */
  observeLag(seconds: number): void;
  /** Browsers currently following the event stream. */
  readonly eventClients: number;
  /** Stops ticking, ends event streams, leaves the registry's change feed. */
  close(): void;
}

/** Statuses an operator may force (UNKNOWN only comes from clearing an override). */
const OVERRIDES: readonly InstanceStatus[] = STATUSES.filter((s) => s !== 'UNKNOWN');
const MAX_PAGE = 500;
const MAX_FILTER = 256;
const API = '/dashboard/api';

const STATIC_DIR = new URL('./static/', import.meta.url);

/**
 * Roster's dashboard on the HTTP port: static files at `/` and `/dashboard/assets/`, a JSON
 * API under `/dashboard/api/` that pages and filters on the server (a browser never receives
 * the whole registry), server-sent events fed by the registry's change feed, and the operator
 * actions (status override, cancel) behind an optional {@link ActionGuard}.
 */
export function createDashboard(options: DashboardOptions): Dashboard {
  const { registry, clock } = options;
  const log = options.logger.child({ component: 'dashboard' });
  const version = options.version ?? packageVersion();
  const peers = options.peers ?? (() => []);
  const ready = options.ready ?? (() => true);
  const guard = options.guard ?? (() => ({ allowed: true }) as const);
  const tickMs = options.tickMs ?? 2000;
  const startedAt = clock.now();
  const files = loadStaticFiles(STATIC_DIR);
  const index = new AppIndex(registry);
  const history = new History(options.historyLength ?? 150);
  const feed = new EventFeed({ ...options.feed, logger: log });
  const unsubscribe = registry.subscribe((change) => {
    index.apply(change);
    feed.change(change);
  });

  const overview = (stats = registry.stats()): Record<string, unknown> => {
    return {
      nodeId: options.nodeId,
      version,
      now: clock.wallNow(),
      uptimeMs: Math.round(clock.now() - startedAt),
      ready: ready(),
      revision: stats.revision,
      apps: index.size,
      registry: {
        size: stats.size,
        byStatus: stats.byStatus,
        renewalsLastMinute: stats.renewalsLastMinute,
        expectedRenewalsPerMinute: stats.expectedRenewalsPerMinute,
        lapsedInstances: stats.lapsedInstances,
        selfPreservation: stats.selfPreservation,
        evictionsTotal: stats.evictionsTotal,
      },
      peers: peers().map((p) => ({
        peer: p.peer,
        connected: p.connected,
        queueDepth: p.queueDepth,
        inFlight: p.inFlight,
        dropped: p.dropped,
        expired: p.expired,
        retries: p.retries,
        lastError: p.lastError ?? null,
      })),
      history: { intervalMs: tickMs, samples: history.samples() },
      eventClients: feed.clients,
    };
  };

  let timer: TimerHandle | undefined;
  const tick = (): void => {
    // One statistics call per tick: the registry computes them in O(n).
    const stats = registry.stats();
    history.sample(
      clock.wallNow(),
      peers().reduce((n, p) => n + p.queueDepth, 0),
      stats.evictionsTotal,
    );
    if (feed.clients > 0) feed.broadcast('overview', overview(stats));
    timer = clock.setTimeout(tick, tickMs);
  };
  timer = clock.setTimeout(tick, tickMs);

  const mount: HttpMount = (router) => {
    const page = files.get('index.html');
    if (page === undefined) throw new Error('dashboard static files are missing index.html');
    router.on(['GET', 'HEAD'], '/', (req, res) => serveFile(req, res, 'index.html'));
    router.on(['GET', 'HEAD'], '/dashboard/assets/:file', (req, res, params: RouteParams) => serveFile(req, res, params.file ?? ''));

    router.on(
      ['GET', 'HEAD'],
      `${API}/overview`,
      api((req) => {
        queryOf(req.url, []);
        return overview(registry.stats());
      }),
    );
    router.on(
      ['GET', 'HEAD'],
      `${API}/apps`,
      api((req) => {
        const query = queryOf(req.url, ['q', 'offset', 'limit']);
        const q = textParam(query, 'q', MAX_FILTER);
        const offset = intParam(query, 'offset', 0, 100_000_000, 0);
        const limit = intParam(query, 'limit', 1, MAX_PAGE, 50);
        const names = index.names(q);
        return {
          revision: registry.revision,
          total: names.length,
          offset,
          limit,
          items: names.slice(offset, offset + limit).map((name) => index.summary(name)),
          totals: index.totals(),
        };
      }),
    );
    router.on(
      ['GET', 'HEAD'],
      `${API}/apps/:app/instances`,
      api((req, params) => {
        const app = appParam(params);
        const query = queryOf(req.url, ['q', 'status', 'zone', 'offset', 'limit']);
        const q = textParam(query, 'q', MAX_FILTER).toLowerCase();
        const status = query.has('status') ? statusValue(query.get('status'), 'status') : undefined;
        const zone = query.has('zone') ? textParam(query, 'zone', MAX_FILTER) : undefined;
        const offset = intParam(query, 'offset', 0, 100_000_000, 0);
        const limit = intParam(query, 'limit', 1, MAX_PAGE, 50);
        const { instances, revision } = registry.getApplication(app);
        const matching = instances.filter(
          ({ record: r }) =>
            (status === undefined || r.status === status) &&
            (zone === undefined || r.zone === zone) &&
            (q === '' || r.instanceId.toLowerCase().includes(q) || r.hostName.toLowerCase().includes(q) || r.ipAddr.includes(q)),
        );
        return {
          app,
          revision,
          now: clock.wallNow(),
          total: matching.length,
          offset,
          limit,
          summary: summarise(app, instances),
          items: matching.slice(offset, offset + limit).map(instanceJson),
        };
      }),
    );
    router.on('GET', `${API}/events`, (req, res) => {
      try {
        queryOf(req.url, []);
      } catch (err) {
        return fail(res, err);
      }
      feed.attach(req, res, registry.revision);
    });

    const action = (name: DashboardAction, run: (app: string, id: string, req: IncomingMessage) => Promise<InstanceView | number>) =>
      api(async (req, params) => {
        const app = appParam(params);
        const id = idParam(params);
        queryOf(req.url, []);
        const verdict = await guard(req, name);
        if (!verdict.allowed) throw new BadRequest('authorization', verdict.message, verdict.status);
        const result = await run(app, id, req);
        log.info({ action: name, app, instanceId: id }, 'operator action');
        return typeof result === 'number' ? { revision: result } : { instance: instanceJson(result), revision: registry.revision };
      });
    const instancePath = `${API}/apps/:app/instances/:id`;
    router.on(
      'PUT',
      `${instancePath}/override`,
      action('set-override', async (app, id, req) => {
        const body = await jsonBody(req);
        for (const key of Object.keys(body)) if (key !== 'status') throw new BadRequest(key, 'unknown field (expected status)');
        return registry.setStatusOverride(app, id, statusValue(body.status, 'status', OVERRIDES));
      }),
    );
    router.on(
      'DELETE',
      `${instancePath}/override`,
      action('clear-override', async (app, id) => registry.clearStatusOverride(app, id)),
    );
    router.on(
      'DELETE',
      instancePath,
      action('cancel', async (app, id) => registry.cancel(app, id)),
    );
  };

  /** A JSON endpoint: its value answered 200, a refusal answered with the parameter named. */
  function api(handler: (req: IncomingMessage, params: RouteParams) => unknown) {
    return async (req: IncomingMessage, res: ServerResponse, params: RouteParams): Promise<void> => {
      try {
        const value = await handler(req, params);
        send(res, 200, 'application/json', `${JSON.stringify(value)}\n`, { 'cache-control': 'no-store' });
      } catch (err) {
        fail(res, err);
      }
    };
  }

  function fail(res: ServerResponse, err: unknown): void {
    if (err instanceof BadRequest) return sendJson(res, err.status, { error: err.message, parameter: err.parameter });
    if (err instanceof RegistryError && err.kind === 'invalid_argument') return sendJson(res, 400, { error: err.message, parameter: err.field });
    if (err instanceof RegistryError && err.kind === 'not_found') return sendJson(res, 404, { error: err.message });
    throw err;
  }

  function serveFile(req: IncomingMessage, res: ServerResponse, name: string): void {
    const file = files.get(name);
    if (file === undefined) return sendJson(res, 404, { error: `no such file: ${name.slice(0, 64)}` });
    const headers = {
      etag: file.etag,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      // Everything comes from this node: no CDN, no inline script, works offline.
      'content-security-policy': "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    };
    if (req.headers['if-none-match'] === file.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    send(res, 200, file.type, file.body, headers);
  }

  return {
    mount,
    observeLag: (seconds) => history.observeLag(seconds),
    get eventClients() {
      return feed.clients;
    },
    close() {
      if (timer) clock.clearTimeout(timer);
      timer = undefined;
      unsubscribe();
      feed.close();
    },
  };
}

function appParam(params: RouteParams): string {
  try {
    return checkApp(params.app ?? '', 'app');
  } catch (err) {
    throw err instanceof RegistryError ? new BadRequest('app', err.message.replace(/^app: /, '')) : err;
  }
}

function idParam(params: RouteParams): string {
  try {
    return checkInstanceId(params.id ?? '', 'id');
  } catch (err) {
    throw err instanceof RegistryError ? new BadRequest('id', err.message.replace(/^id: /, '')) : err;
  }
}

/** An instance as the browser gets it: the record, its overrides and this node's lease times. */
function instanceJson({ record: r, lease }: InstanceView): Record<string, unknown> {
  return {
    ...recordFields(r),
    overriddenStatus: r.overriddenStatus ?? null,
    registrationTimestamp: lease.registrationTimestamp,
    lastRenewalTimestamp: lease.lastRenewalTimestamp,
    serviceUpTimestamp: lease.serviceUpTimestamp,
  };
}

function packageVersion(): string {
  const pkg: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  return typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string' ? pkg.version : 'unknown';
}
