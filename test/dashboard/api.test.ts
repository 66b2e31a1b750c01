import assert from 'node:assert/strict';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { registration, WAIT_MS } from '../grpc/helpers.js';
import { request, startDashboardNode, type DashboardNode } from './harness.js';

/** Follows the dashboard's event stream, parsing server-sent events as they come. */
class EventReader {
  readonly events: Array<{ event: string; data: any }> = [];
  ended = false;
  #buffer = '';
  #wake: (() => void) | undefined;

  private constructor(readonly response: IncomingMessage) {
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      this.#buffer += chunk;
      let end: number;
      while ((end = this.#buffer.indexOf('\n\n')) >= 0) {
        const block = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event !== undefined && data !== undefined) this.events.push({ event, data: JSON.parse(data) });
      }
      this.#wake?.();
    });
    response.on('end', () => {
      this.ended = true;
      this.#wake?.();
    });
    response.on('close', () => {
      this.ended = true;
      this.#wake?.();
    });
  }

  static open(base: string): Promise<EventReader> {
    return new Promise((resolve, reject) => {
      const req = httpGet(`${base}/dashboard/api/events`, (res) => resolve(new EventReader(res)));
      req.on('error', reject);
      req.setTimeout(WAIT_MS, () => req.destroy(new Error('no answer from the event stream')));
    });
  }

  /** Waits (bounded) until an event named `name` satisfying `match` has arrived. */
  async next(name: string, match: (data: any) => boolean = () => true): Promise<any> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const found = this.events.find((e) => e.event === name && match(e.data));
      if (found) return found.data;
      if (this.ended) throw new Error(`stream ended before a ${name} event`);
      if (Date.now() > deadline) throw new Error(`no ${name} event within ${WAIT_MS} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  close(): void {
    this.response.destroy();
  }
}

describe('dashboard JSON API', () => {
  let node: DashboardNode;
  const api = (path: string, init?: Parameters<typeof request>[2]) => request(node.base, `/dashboard/api${path}`, init);

  before(async () => {
    node = await startDashboardNode({ dashboard: { version: '9.9.9-test' } });
    for (let i = 0; i < 120; i++) {
      node.registry.register(registration({ app: `app-${String(i % 12).padStart(2, '0')}`, instanceId: `i-${i}`, zone: `zone-${i % 3}`, status: i % 12 === 0 ? 'DOWN' : 'UP', ipAddr: `10.0.0.${i}` }));
    }
  });
  after(() => node.close());

  test('the page and its assets are served from the node, with a strict content security policy', async () => {
    const page = await request(node.base, '/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    const assets = [...String(page.body).matchAll(/(?:src|href)="([^"#][^"]*)"/g)].map((m) => m[1]!);
    assert.ok(assets.length >= 3, 'the page references its script, style and icon');
    for (const path of assets) {
      assert.ok(path.startsWith('/dashboard/assets/'), `${path} is served by the node (no CDN)`);
      const asset = await request(node.base, path);
      assert.equal(asset.status, 200, path);
      const again = await request(node.base, path, { headers: { 'if-none-match': asset.headers.get('etag')! } });
      assert.equal(again.status, 304, `${path} revalidates`);
    }
    assert.equal((await request(node.base, '/dashboard/assets/nope.js')).status, 404);
    assert.equal((await request(node.base, '/dashboard/assets/..%2Fdashboard.ts')).status, 404);
  });

  test('overview: node, version, registry by status, renewals, self-preservation, peers, history', async () => {
    const { status, body } = await api('/overview');
    assert.equal(status, 200);
    assert.equal(body.nodeId, 'node-under-test');
    assert.equal(body.version, '9.9.9-test');
    assert.equal(body.apps, 12);
    assert.equal(body.registry.size, 120);
    assert.deepEqual(body.registry.byStatus, { UP: 110, DOWN: 10, STARTING: 0, OUT_OF_SERVICE: 0, UNKNOWN: 0 });
    assert.equal(body.registry.selfPreservation, false);
    assert.equal(body.registry.renewalsLastMinute, 120, 'registrations count as renewals');
    assert.equal(body.registry.lapsedInstances, 0);
    assert.deepEqual(body.peers, []);
    assert.equal(body.history.intervalMs, 2000);
  });

  test('applications: filtered and paged on the server, with counts by status and zone', async () => {
    const first = await api('/apps?limit=5');
    assert.equal(first.status, 200);
    assert.equal(first.body.total, 12);
    assert.deepEqual(
      first.body.items.map((a: { app: string }) => a.app),
      ['app-00', 'app-01', 'app-02', 'app-03', 'app-04'],
    );
    assert.deepEqual(first.body.items[0], { app: 'app-00', count: 10, byStatus: { UP: 0, DOWN: 10, STARTING: 0, OUT_OF_SERVICE: 0, UNKNOWN: 0 }, byZone: { 'zone-0': 10 } });
    assert.deepEqual(first.body.totals.byZone, { 'zone-0': 40, 'zone-1': 40, 'zone-2': 40 });
    assert.deepEqual(
      (await api('/apps?offset=10&limit=5')).body.items.map((a: { app: string }) => a.app),
      ['app-10', 'app-11'],
    );
    const search = await api('/apps?q=P-1');
    assert.deepEqual(
      search.body.items.map((a: { app: string }) => a.app),
      ['app-10', 'app-11'],
      'case-insensitive substring',
    );
    assert.equal(search.body.totals.apps, 12);
  });

  test('instances of an application: filtered by text, status and zone, paged', async () => {
    const all = await api('/apps/APP-01/instances');
    assert.equal(all.status, 200);
    assert.equal(all.body.app, 'app-01');
    assert.equal(all.body.total, 10);
    const one = all.body.items[0];
    assert.equal(one.instanceId, 'i-1');
    assert.equal(one.overriddenStatus, null);
    assert.equal(one.homePageUrl, 'http://billing-1:8080/');
    assert.equal(typeof one.registrationTimestamp, 'number');
    assert.deepEqual(one.metadata, { version: '1.2.3' });
    assert.equal((await api('/apps/app-00/instances?status=DOWN&limit=3')).body.items.length, 3);
    assert.equal((await api('/apps/app-00/instances?status=UP')).body.total, 0);
    assert.deepEqual(
      (await api('/apps/app-01/instances?q=10.0.0.13')).body.items.map((i: { instanceId: string }) => i.instanceId),
      ['i-13'],
    );
    assert.equal((await api('/apps/app-01/instances?zone=zone-1')).body.total, 10);
    assert.equal((await api('/apps/app-01/instances?zone=zone-2')).body.total, 0);
    const unknown = await api('/apps/nobody/instances');
    assert.equal(unknown.status, 200);
    assert.equal(unknown.body.total, 0);
  });

  test('bad input: 400 naming the parameter, nothing changed', async () => {
    const cases: Array<[string, string, string?]> = [
      ['/apps?limit=0', 'limit'],
      ['/apps?limit=501', 'limit'],
      ['/apps?limit=ten', 'limit'],
      ['/apps?offset=-1', 'offset'],
      ['/apps?limt=5', 'limt'],
      ['/apps?q=a&q=b', 'q'],
      [`/apps?q=${'x'.repeat(300)}`, 'q'],
      ['/apps?q=%01', 'q'],
      ['/apps/app-01/instances?status=SLEEPY', 'status'],
      ['/apps/bad%20name/instances', 'app'],
      ['/overview?verbose=1', 'verbose'],
    ];
    for (const [path, parameter] of cases) {
      const { status, body } = await api(path);
      assert.equal(status, 400, path);
      assert.equal(body.parameter, parameter, path);
      assert.match(body.error, new RegExp(`^${parameter}: `), path);
    }
    const before = node.registry.revision;
    const refusals: Array<[string, Parameters<typeof request>[2], number, string]> = [
      ['/apps/app-01/instances/i-1/override', { method: 'PUT', json: { status: 'UNKNOWN' } }, 400, 'status'],
      ['/apps/app-01/instances/i-1/override', { method: 'PUT', json: { status: 'UP', extra: 1 } }, 400, 'extra'],
      ['/apps/app-01/instances/i-1/override', { method: 'PUT', json: {} }, 400, 'status'],
      ['/apps/app-01/instances/i-1/override', { method: 'PUT', body: '{"status":', headers: { 'content-type': 'application/json' } }, 400, 'body'],
      ['/apps/app-01/instances/i-1/override', { method: 'PUT', json: ['UP'] }, 400, 'body'],
      ['/apps/app-01/instances/i-1/override', { method: 'PUT', body: 'status=UP', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415, 'content-type'],
      ['/apps/app-01/instances/i-1/override', { method: 'PUT', json: { status: 'x'.repeat(5000) } }, 413, 'body'],
      ['/apps/app-01/instances/%20bad/override', { method: 'PUT', json: { status: 'UP' } }, 400, 'id'],
    ];
    for (const [path, init, code, parameter] of refusals) {
      const { status, body } = await api(path, init);
      assert.equal(status, code, `${path} ${init?.body ?? JSON.stringify(init?.json)}`);
      assert.equal(body.parameter, parameter);
    }
    const missing = await api('/apps/app-01/instances/nope', { method: 'DELETE' });
    assert.equal(missing.status, 404);
    assert.match(missing.body.error, /app-01\/nope is not registered/);
    assert.equal(node.registry.revision, before, 'no refused request changed anything');
    assert.equal((await api('/apps', { method: 'POST' })).status, 405);
  });

  test('actions: set and clear an override, cancel; each one a new revision', async () => {
    const set = await api('/apps/app-02/instances/i-2/override', { method: 'PUT', json: { status: 'OUT_OF_SERVICE' } });
    assert.equal(set.status, 200);
    assert.equal(set.body.instance.status, 'OUT_OF_SERVICE');
    assert.equal(set.body.instance.overriddenStatus, 'OUT_OF_SERVICE');
    assert.equal(node.registry.get('app-02', 'i-2').record.status, 'OUT_OF_SERVICE');
    const cleared = await api('/apps/app-02/instances/i-2/override', { method: 'DELETE' });
    assert.equal(cleared.status, 200);
    assert.equal(cleared.body.instance.overriddenStatus, null);
    assert.equal(cleared.body.instance.status, 'UNKNOWN', 'UNKNOWN until the next heartbeat re-registers it');
    const cancelled = await api('/apps/app-02/instances/i-14', { method: 'DELETE' });
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.body.revision, node.registry.revision);
    assert.throws(() => node.registry.get('app-02', 'i-14'), /not registered/);
  });
});

describe('dashboard actions behind a guard', () => {
  test('a refusing guard answers its status and changes nothing; reads stay open', async () => {
    const seen: string[] = [];
    const node = await startDashboardNode({
      dashboard: {
        guard: (req, action) => {
          seen.push(action);
          return req.headers.authorization === 'Bearer operator' ? { allowed: true } : { allowed: false, status: req.headers.authorization ? 403 : 401, message: 'the operate role is required' };
        },
      },
    });
    try {
      node.registry.register(registration());
      const before = node.registry.revision;
      const anonymous = await request(node.base, '/dashboard/api/apps/billing/instances/i-1', { method: 'DELETE' });
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.body.error, 'authorization: the operate role is required');
      const reader = await request(node.base, '/dashboard/api/apps/billing/instances/i-1/override', { method: 'PUT', json: { status: 'DOWN' }, headers: { authorization: 'Bearer reader' } });
      assert.equal(reader.status, 403);
      assert.equal(node.registry.revision, before);
      assert.equal((await request(node.base, '/dashboard/api/apps')).status, 200);
      const operator = await request(node.base, '/dashboard/api/apps/billing/instances/i-1/override', { method: 'PUT', json: { status: 'DOWN' }, headers: { authorization: 'Bearer operator' } });
      assert.equal(operator.status, 200);
      assert.deepEqual(seen, ['cancel', 'set-override', 'set-override']);
    } finally {
      await node.close();
    }
  });
});

describe('dashboard event stream', () => {
  test('hello, then coalesced changes from the registry feed, and the overview on every tick', async () => {
    const node = await startDashboardNode();
    const events = await EventReader.open(node.base);
    try {
      const hello = await events.next('hello');
      assert.equal(hello.revision, 0);
      for (let i = 0; i < 3; i++) node.registry.register(registration({ instanceId: `i-${i}` }));
      const batch = await events.next('changes', (d) => d.revision === 3);
      assert.deepEqual(
        batch.changes.map((c: { type: string; instanceId: string }) => `${c.type} ${c.instanceId}`),
        ['ADDED i-0', 'ADDED i-1', 'ADDED i-2'],
      );
      node.clock.advance(2000);
      const overview = await events.next('overview');
      assert.equal(overview.registry.size, 3);
      assert.equal(overview.history.samples.length, 1);
      assert.equal(node.dashboard.eventClients, 1);
    } finally {
      events.close();
      await node.close();
    }
  });

  test('a client that does not read is dropped with a resync event instead of being buffered for', async () => {
    // Large overview events (long peer errors, ~66 KB each) pile up unread in the slow socket.
    const longError = 'e'.repeat(4096);
    const peers = Array.from({ length: 16 }, (_, i) => ({ peer: `10.0.0.${i}:8761`, connected: false, queueDepth: 0, inFlight: 0, dropped: 0, expired: 0, retries: 0, lastError: longError }));
    const node = await startDashboardNode({ dashboard: { peers: () => peers, feed: { maxBufferedBytes: 64 * 1024 } } });
    const reading = await EventReader.open(node.base);
    const slow = await EventReader.open(node.base);
    try {
      await reading.next('hello');
      await slow.next('hello');
      slow.response.pause();
      let ticks = 0;
      while (node.dashboard.eventClients > 1 && ticks < 200) {
        node.clock.advance(2000);
        ticks++;
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(node.dashboard.eventClients, 1, 'the slow client was dropped, the reading one kept');
      slow.response.resume();
      const resync = await slow.next('resync');
      assert.equal(resync.reason, 'fell behind');
      assert.ok(slow.events.filter((e) => e.event === 'overview').length < ticks, 'what came after the drop was never buffered for it');
      node.registry.register(registration());
      assert.equal((await reading.next('changes')).revision, 1, 'the reading client is unaffected');
      assert.equal(reading.events.filter((e) => e.event === 'overview').length, ticks);
    } finally {
      reading.close();
      slow.close();
      await node.close();
    }
  });
});
