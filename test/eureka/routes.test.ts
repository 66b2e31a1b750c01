import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { FakeClock } from '../../src/core/clock.js';
import { Registry } from '../../src/core/registry.js';
import { LIMITS } from '../../src/core/validate.js';
import { EUREKA_PREFIXES, eurekaRoutes, HTTP_STATUS_BY_KIND } from '../../src/eureka/routes.js';
import { startHttpServer } from '../../src/http/server.js';
import { captureLogger } from '../client/harness.js';
import { registration } from '../core/fixtures.js';
import { eurekaInstance, http, JSON_HEADERS, startFace, type FaceHarness } from './harness.js';

const ACCEPT_JSON = { accept: 'application/json' };

async function withFace(body: (h: FaceHarness) => Promise<void>, options: Parameters<typeof startFace>[0] = {}): Promise<void> {
  const h = await startFace(options);
  try {
    await body(h);
  } finally {
    await h.close();
  }
}

interface Applications {
  applications: { versions__delta: string; apps__hashcode: string; application: { name: string; instance: Record<string, unknown>[] }[] };
}

const parse = <T = Applications>(text: string): T => JSON.parse(text) as T;
const instancesOf = (doc: Applications): Record<string, unknown>[] => doc.applications.application.flatMap((a) => a.instance);

describe('Eureka REST face: endpoints', () => {
  test('register (204) and every read, under both /eureka/ and /eureka/v2/', () =>
    withFace(async (h) => {
      for (const prefix of EUREKA_PREFIXES) {
        const id = `cart${prefix.replace(/\//g, '-')}`;
        const res = await h.call('POST', `${prefix}/apps/CART`, { headers: JSON_HEADERS, body: JSON.stringify({ instance: eurekaInstance({ instanceId: id }) }) });
        assert.equal(res.status, 204, res.text);
        assert.equal(res.text, '');
        const one = await h.call('GET', `${prefix}/apps/CART/${id}`, { headers: ACCEPT_JSON });
        assert.equal(one.status, 200);
        assert.equal(parse<{ instance: { instanceId: string; app: string } }>(one.text).instance.app, 'CART');
        assert.equal((await h.call('GET', `${prefix}/apps/cart`, { headers: ACCEPT_JSON })).status, 200, 'app names are case-insensitive');
        assert.equal((await h.call('GET', `${prefix}/instances/${id}`, { headers: ACCEPT_JSON })).status, 200);
        const all = parse((await h.call('GET', `${prefix}/apps/`, { headers: ACCEPT_JSON })).text);
        assert.ok(instancesOf(all).some((i) => i.instanceId === id));
      }
      assert.equal(h.registry.stats().size, 2);
      const app = parse<{ application: { name: string; instance: unknown[] } }>((await h.call('GET', '/eureka/apps/CART', { headers: ACCEPT_JSON })).text);
      assert.deepEqual([app.application.name, app.application.instance.length], ['CART', 2]);
    }));

  test('no Accept header gets XML, as from the Eureka server; Accept json gets JSON', () =>
    withFace(async (h) => {
      await h.register();
      const xml = await h.call('GET', '/eureka/apps/CART/cart-1.local');
      assert.equal(xml.headers['content-type'], 'application/xml');
      assert.match(xml.text, /^<instance><instanceId>cart-1\.local<\/instanceId>/);
      const json = await h.call('GET', '/eureka/apps', { headers: { accept: 'application/json, text/plain' } });
      assert.equal(json.headers['content-type'], 'application/json');
      assert.equal(parse(json.text).applications.apps__hashcode, 'UP_1_');
    }));

  test('an XML registration is stored like a JSON one', () =>
    withFace(async (h) => {
      const body = `<instance><instanceId>x-1</instanceId><hostName>x-1.local</hostName><app>CART</app><ipAddr>10.0.0.3</ipAddr>
        <status>UP</status><port enabled="true">8081</port><securePort enabled="false">443</securePort>
        <dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"><name>MyOwn</name></dataCenterInfo>
        <metadata><build__id>7</build__id></metadata><vipAddress>cart</vipAddress></instance>`;
      const res = await h.call('POST', '/eureka/v2/apps/CART', { headers: { 'content-type': 'application/xml; charset=utf-8' }, body });
      assert.equal(res.status, 204, res.text);
      const r = h.registry.get('cart', 'x-1').record;
      assert.deepEqual([r.port, r.metadata, r.vipAddress], [{ number: 8081, enabled: true }, { build_id: '7' }, 'cart']);
    }));

  test('heartbeat: 200; 404 when unknown, when the caller is newer, and after the override is deleted; the status parameter is ignored', () =>
    withFace(async (h) => {
      await h.register({ lastDirtyTimestamp: '1767225000000' });
      const hb = (query = '') => h.call('PUT', `/eureka/apps/CART/cart-1.local${query}`, { headers: JSON_HEADERS });
      assert.equal((await hb()).status, 200);
      assert.equal((await hb('?status=DOWN&lastDirtyTimestamp=1767225000000')).status, 200);
      assert.equal(h.registry.get('cart', 'cart-1.local').record.status, 'UP');
      assert.equal((await hb('?status=UP&lastDirtyTimestamp=1767225000001')).status, 404, 'caller newer: register again');
      assert.equal((await hb('?lastDirtyTimestamp=1767224000000')).status, 200, 'stored newer: a client just gets OK');
      assert.equal((await h.call('PUT', '/eureka/apps/CART/nobody')).status, 404);
      assert.equal((await h.call('PUT', '/eureka/apps/CART/cart-1.local/status?value=OUT_OF_SERVICE')).status, 200);
      assert.equal((await h.call('DELETE', '/eureka/apps/CART/cart-1.local/status?lastDirtyTimestamp=1')).status, 200);
      assert.equal(h.registry.get('cart', 'cart-1.local').record.status, 'UNKNOWN');
      assert.equal((await hb()).status, 404, 'UNKNOWN after the override is gone: register again');
      h.clock.advance(1_000);
      await h.register({ lastDirtyTimestamp: String(h.clock.wallNow()) });
      assert.equal((await hb()).status, 200);
      assert.equal(h.registry.get('cart', 'cart-1.local').record.status, 'UP');
    }));

  test('cancel: 200, then 404', () =>
    withFace(async (h) => {
      await h.register();
      assert.equal((await h.call('DELETE', '/eureka/apps/CART/cart-1.local')).status, 200);
      assert.equal(h.registry.stats().size, 0);
      assert.equal((await h.call('DELETE', '/eureka/apps/CART/cart-1.local')).status, 404);
      assert.equal((await h.call('GET', '/eureka/apps/CART/cart-1.local')).status, 404);
      assert.equal((await h.call('GET', '/eureka/apps/CART')).status, 404);
      assert.equal((await h.call('GET', '/eureka/instances/cart-1.local')).status, 404);
    }));

  test('status override and metadata update, readable through every read', () =>
    withFace(async (h) => {
      await h.register({ metadata: { keep: 'me' } });
      assert.equal((await h.call('PUT', '/eureka/apps/CART/cart-1.local/status?value=OUT_OF_SERVICE&lastDirtyTimestamp=1')).status, 200);
      assert.equal((await h.call('PUT', '/eureka/apps/CART/cart-1.local/metadata?version=2.0&region=eu&version=ignored')).status, 200);
      const one = parse<{ instance: Record<string, unknown> }>((await h.call('GET', '/eureka/apps/CART/cart-1.local', { headers: ACCEPT_JSON })).text).instance;
      assert.deepEqual([one.status, one.overriddenStatus, one.metadata], ['OUT_OF_SERVICE', 'OUT_OF_SERVICE', { keep: 'me', region: 'eu', version: '2.0' }]);
      const revision = h.registry.revision;
      assert.equal((await h.call('PUT', '/eureka/apps/CART/cart-1.local/metadata')).status, 200, 'nothing to set: OK, no new version');
      assert.equal(h.registry.revision, revision);
      assert.equal((await h.call('PUT', '/eureka/apps/CART/nobody/metadata?a=b')).status, 404);
      assert.equal((await h.call('PUT', '/eureka/apps/CART/nobody/status?value=UP')).status, 404);
      assert.equal((await h.call('DELETE', '/eureka/apps/CART/nobody/status')).status, 404);
    }));

  test('vips and svips list the instances of a VIP; an unknown VIP is an empty 200', () =>
    withFace(async (h) => {
      await h.register();
      await h.register({ app: 'OTHER', hostName: 'o-1', vipAddress: 'other,cart', secureVipAddress: '' });
      const vip = parse((await h.call('GET', '/eureka/vips/cart', { headers: ACCEPT_JSON })).text);
      assert.deepEqual(
        vip.applications.application.map((a) => a.name),
        ['CART', 'OTHER'],
      );
      assert.equal(vip.applications.apps__hashcode, 'UP_2_');
      const svip = parse((await h.call('GET', '/eureka/v2/svips/cart-secure', { headers: ACCEPT_JSON })).text);
      assert.deepEqual(
        instancesOf(svip).map((i) => i.instanceId),
        ['cart-1.local'],
      );
      const none = await h.call('GET', '/eureka/vips/nothing', { headers: ACCEPT_JSON });
      assert.equal(none.status, 200);
      assert.deepEqual(parse(none.text).applications.application, []);
    }));

  test('gzip on apps and apps/delta when accepted; plain otherwise', () =>
    withFace(async (h) => {
      await h.register();
      for (const path of ['/eureka/apps', '/eureka/apps/delta']) {
        const zipped = await h.call('GET', path, { headers: { ...ACCEPT_JSON, 'accept-encoding': 'gzip, deflate' } });
        assert.equal(zipped.headers['content-encoding'], 'gzip');
        assert.equal(instancesOf(parse(gunzipSync(zipped.raw).toString())).length, 1);
        const plain = await h.call('GET', path, { headers: ACCEPT_JSON });
        assert.equal(plain.headers['content-encoding'], undefined);
        assert.equal(gunzipSync(zipped.raw).toString(), plain.text);
      }
    }));

  test('a plain full read larger than the kept bound is the gzip body inflated, fresh after a change', () =>
    withFace(
      async (h) => {
        for (let i = 0; i < 4; i++) await h.register({ hostName: `cart-${i}.local` });
        const zipped = await h.call('GET', '/eureka/apps', { headers: { ...ACCEPT_JSON, 'accept-encoding': 'gzip' } });
        const plain = await h.call('GET', '/eureka/apps', { headers: ACCEPT_JSON });
        assert.equal(plain.status, 200);
        assert.equal(plain.headers['content-encoding'], undefined);
        assert.equal(plain.headers['transfer-encoding'], 'chunked');
        assert.ok(plain.text.length > 1024);
        assert.equal(plain.text, gunzipSync(zipped.raw).toString());
        await h.register({ hostName: 'cart-9.local' });
        assert.equal(instancesOf(parse((await h.call('GET', '/eureka/apps', { headers: ACCEPT_JSON })).text)).length, 5);
      },
      { face: { maxPlainBodyBytes: 1024 } },
    ));

  test('full reads are built once per revision and are fresh right after a change', () =>
    withFace(async (h) => {
      await h.register();
      const first = await h.call('GET', '/eureka/apps', { headers: { 'accept-encoding': 'gzip' } });
      const again = await h.call('GET', '/eureka/apps', { headers: { 'accept-encoding': 'gzip' } });
      assert.deepEqual(again.raw, first.raw);
      h.clock.advance(5_000);
      assert.equal((await h.call('PUT', '/eureka/apps/CART/cart-1.local')).status, 200);
      assert.deepEqual((await h.call('GET', '/eureka/apps', { headers: { 'accept-encoding': 'gzip' } })).raw, first.raw, 'a renewal is no change');
      await h.register({ hostName: 'cart-2.local' });
      const after = parse((await h.call('GET', '/eureka/apps', { headers: ACCEPT_JSON })).text);
      assert.equal(instancesOf(after).length, 2);
      assert.equal(after.applications.versions__delta, String(h.registry.revision));
    }));

  test('reads answer 403 while the node is not ready (as Eureka does); writes are taken', () => {
    let ready = false;
    return withFace(
      async (h) => {
        await h.register();
        for (const path of ['/eureka/apps', '/eureka/apps/delta', '/eureka/apps/CART', '/eureka/apps/CART/cart-1.local', '/eureka/instances/cart-1.local', '/eureka/vips/cart', '/eureka/svips/cart']) {
          const res = await h.call('GET', path);
          assert.equal(res.status, 403, path);
          assert.match(res.text, /not yet synchronised/);
        }
        ready = true;
        assert.equal((await h.call('GET', '/eureka/apps')).status, 200);
      },
      { face: { ready: () => ready } },
    );
  });

  test('an unexpected failure is a logged 500 with no detail, and the server keeps serving', async () => {
    const clock = new FakeClock();
    const registry = new Registry({ clock });
    const broken = new Proxy(registry, {
      get(target, prop) {
        if (prop === 'snapshot')
          return () => {
            throw new Error('disk on fire');
          };
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const { logger, lines } = captureLogger();
    const server = await startHttpServer({ port: 0, logger, mounts: [eurekaRoutes({ registry: broken, clock, logger })] });
    try {
      const res = await http(server.port, 'GET', '/eureka/apps');
      assert.equal(res.status, 500);
      assert.equal(res.text, 'internal error\n');
      assert.ok(lines.some((l) => l.component === 'eureka' && l.route === 'apps' && String((l.err as { message?: string })?.message).includes('disk on fire')));
      assert.equal((await http(server.port, 'GET', '/eureka/vips/x')).status, 200);
    } finally {
      await server.close();
    }
  });

  test('one table maps every registry error kind to an HTTP status', () => {
    assert.deepEqual(HTTP_STATUS_BY_KIND, {
      invalid_argument: 400,
      not_found: 404,
      resource_exhausted: 429,
      unavailable: 503,
      unauthenticated: 401,
      failed_precondition: 409,
    });
  });

  test('requests are counted by route and status in the given metrics registry', () =>
    withFace(async (h) => {
      await h.register();
      await h.call('PUT', '/eureka/apps/CART/nobody');
      const text = await h.metrics.metrics();
      assert.match(text, /roster_eureka_requests_total\{route="register",code="204"\} 1/);
      assert.match(text, /roster_eureka_requests_total\{route="heartbeat",code="404"\} 1/);
    }));
});

describe('Eureka REST face: apps/delta', () => {
  test('the changes of the time window, the last per instance with its actionType, and the whole registry hash', () =>
    withFace(async (h) => {
      const delta = async () => parse((await h.call('GET', '/eureka/apps/delta', { headers: ACCEPT_JSON })).text);
      assert.deepEqual((await delta()).applications.application, [], 'nothing changed yet');
      await h.register({ hostName: 'old' });
      h.clock.advance(30_000);
      await h.register({ hostName: 'a' });
      await h.register({ hostName: 'b' });
      await h.register({ app: 'OTHER', hostName: 'gone' });
      assert.equal((await h.call('PUT', '/eureka/apps/CART/a/status?value=OUT_OF_SERVICE')).status, 200);
      assert.equal((await h.call('DELETE', '/eureka/apps/OTHER/gone')).status, 200);
      let doc = await delta();
      assert.equal(doc.applications.apps__hashcode, 'OUT_OF_SERVICE_1_UP_2_', 'counts of the whole registry');
      assert.equal(doc.applications.versions__delta, String(h.registry.revision));
      const seen = Object.fromEntries(instancesOf(doc).map((i) => [i.instanceId, [i.actionType, i.status]]));
      assert.deepEqual(seen, { old: ['ADDED', 'UP'], a: ['MODIFIED', 'OUT_OF_SERVICE'], b: ['ADDED', 'UP'], gone: ['DELETED', 'UP'] });

      h.clock.advance(95_000); // 'old' is now 125 s ago: outside the 120 s window; the rest 95 s ago
      doc = await delta();
      assert.deepEqual(
        instancesOf(doc)
          .map((i) => i.instanceId)
          .sort(),
        ['a', 'b', 'gone'],
      );
      assert.equal(doc.applications.apps__hashcode, 'OUT_OF_SERVICE_1_UP_2_');
      h.clock.advance(30_000);
      assert.deepEqual((await delta()).applications.application, []);
    }));

  test('a client that applies the delta to its last full read reaches the full registry and its hash', () =>
    withFace(async (h) => {
      await h.register({ hostName: 'a' });
      await h.register({ hostName: 'b' });
      const full = parse((await h.call('GET', '/eureka/apps', { headers: ACCEPT_JSON })).text);
      const local = new Map(instancesOf(full).map((i) => [String(i.instanceId), i]));
      h.clock.advance(10_000);
      await h.register({ hostName: 'c', status: 'STARTING' });
      assert.equal((await h.call('DELETE', '/eureka/apps/CART/a')).status, 200);
      assert.equal((await h.call('PUT', '/eureka/apps/CART/b/status?value=OUT_OF_SERVICE')).status, 200);
      const delta = parse((await h.call('GET', '/eureka/apps/delta', { headers: ACCEPT_JSON })).text);
      for (const i of instancesOf(delta)) {
        if (i.actionType === 'DELETED') local.delete(String(i.instanceId));
        else local.set(String(i.instanceId), i);
      }
      const counts = new Map<string, number>();
      for (const i of local.values()) counts.set(String(i.status), (counts.get(String(i.status)) ?? 0) + 1);
      const hash = [...counts]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([s, n]) => `${s}_${n}_`)
        .join('');
      assert.equal(hash, delta.applications.apps__hashcode);
      const now = parse((await h.call('GET', '/eureka/apps', { headers: ACCEPT_JSON })).text);
      assert.deepEqual(
        [...local.keys()].sort(),
        instancesOf(now)
          .map((i) => String(i.instanceId))
          .sort(),
      );
    }));

  test('polls between two changes share one body (the change log is read once); the next change is in the next poll', () =>
    withFace(async (h) => {
      await h.register({ hostName: 'a' });
      let logReads = 0;
      const delta = h.registry.delta.bind(h.registry);
      h.registry.delta = (...args: Parameters<typeof delta>) => {
        logReads++;
        return delta(...args);
      };
      const poll = async (headers: Record<string, string>) => (await h.call('GET', '/eureka/apps/delta', { headers })).raw;
      for (const headers of [ACCEPT_JSON, { ...ACCEPT_JSON, 'accept-encoding': 'gzip' }]) {
        const first = await poll(headers);
        const reads = logReads;
        const again = await Promise.all([poll(headers), poll(headers), poll(headers)]);
        for (const body of again) assert.deepEqual(body, first);
        assert.equal(logReads, reads, 'the same revision and window: the kept body');
      }
      await h.register({ hostName: 'b' });
      const doc = parse((await h.call('GET', '/eureka/apps/delta', { headers: ACCEPT_JSON })).text);
      assert.deepEqual(
        instancesOf(doc)
          .map((i) => i.instanceId)
          .sort(),
        ['a', 'b'],
        'a change moves the revision: never stale',
      );
      assert.equal(doc.applications.versions__delta, String(h.registry.revision));
    }));

  test('403 when the window reaches past the change log, so clients fetch everything', () =>
    withFace(
      async (h) => {
        for (const host of ['a', 'b', 'c', 'd']) await h.register({ hostName: host });
        const res = await h.call('GET', '/eureka/apps/delta', { headers: ACCEPT_JSON });
        assert.equal(res.status, 403);
        assert.match(res.text, /fetch the full registry/);
      },
      { registryOptions: { changeLogSize: 2 } },
    ));

  test('an instance registered over another face shows in the delta like one registered here', () =>
    withFace(async (h) => {
      h.registry.register(registration({ app: 'billing', instanceId: 'grpc-1', lastDirtyTimestamp: 0 }));
      const doc = parse((await h.call('GET', '/eureka/apps/delta', { headers: ACCEPT_JSON })).text);
      assert.deepEqual(
        instancesOf(doc).map((i) => [i.app, i.instanceId, i.actionType]),
        [['BILLING', 'grpc-1', 'ADDED']],
      );
    }));
});

describe('Eureka REST face: bad input changes nothing', () => {
  const big = JSON.stringify({ instance: eurekaInstance({ metadata: { pad: 'x'.repeat(70 * 1024) } }) });
  const cases: { name: string; method: string; path: string; headers?: Record<string, string>; body?: string; status: number; reason?: RegExp }[] = [
    { name: 'register without a content type', method: 'POST', path: '/eureka/apps/CART', body: JSON.stringify({ instance: eurekaInstance() }), status: 415 },
    { name: 'register as text/plain', method: 'POST', path: '/eureka/apps/CART', headers: { 'content-type': 'text/plain' }, body: '{}', status: 415 },
    { name: 'register gzip-encoded', method: 'POST', path: '/eureka/apps/CART', headers: { ...JSON_HEADERS, 'content-encoding': 'gzip' }, body: '{}', status: 415 },
    { name: 'register larger than the body limit', method: 'POST', path: '/eureka/apps/CART', headers: JSON_HEADERS, body: big, status: 413 },
    { name: 'register streamed (chunked) past the body limit', method: 'POST', path: '/eureka/apps/CART', headers: { ...JSON_HEADERS, 'transfer-encoding': 'chunked' }, body: big, status: 413 },
    { name: 'malformed JSON', method: 'POST', path: '/eureka/apps/CART', headers: JSON_HEADERS, body: '{"instance": {', status: 400, reason: /body: malformed JSON/ },
    { name: 'malformed XML', method: 'POST', path: '/eureka/apps/CART', headers: { 'content-type': 'application/xml' }, body: '<instance><app>', status: 400, reason: /body: malformed XML/ },
    { name: 'an empty body', method: 'POST', path: '/eureka/apps/CART', headers: JSON_HEADERS, body: '', status: 400, reason: /body/ },
    {
      name: 'no hostName',
      method: 'POST',
      path: '/eureka/apps/CART',
      headers: JSON_HEADERS,
      body: JSON.stringify({ instance: eurekaInstance({ hostName: undefined }) }),
      status: 400,
      reason: /instance\.hostName: is required/,
    },
    {
      name: 'a bare-number port',
      method: 'POST',
      path: '/eureka/apps/CART',
      headers: JSON_HEADERS,
      body: JSON.stringify({ instance: eurekaInstance({ port: 8080 }) }),
      status: 400,
      reason: /instance\.port/,
    },
    {
      name: 'dataCenterInfo without @class',
      method: 'POST',
      path: '/eureka/apps/CART',
      headers: JSON_HEADERS,
      body: JSON.stringify({ instance: eurekaInstance({ dataCenterInfo: { name: 'MyOwn' } }) }),
      status: 400,
      reason: /@class/,
    },
    {
      name: 'a mismatched app',
      method: 'POST',
      path: '/eureka/apps/OTHER',
      headers: JSON_HEADERS,
      body: JSON.stringify({ instance: eurekaInstance() }),
      status: 400,
      reason: /mismatched appName, expecting OTHER but was CART/,
    },
    {
      name: 'an app name Roster cannot hold',
      method: 'POST',
      path: '/eureka/apps/a%20b',
      headers: JSON_HEADERS,
      body: JSON.stringify({ instance: eurekaInstance({ app: 'a b' }) }),
      status: 400,
      reason: /instance\.app/,
    },
    {
      name: 'an instance id Roster cannot hold',
      method: 'POST',
      path: '/eureka/apps/CART',
      headers: JSON_HEADERS,
      body: JSON.stringify({ instance: eurekaInstance({ instanceId: 'has space' }) }),
      status: 400,
      reason: /instance_id/,
    },
    {
      name: 'a lease outside the bounds',
      method: 'POST',
      path: '/eureka/apps/CART',
      headers: JSON_HEADERS,
      body: JSON.stringify({ instance: eurekaInstance({ leaseInfo: { durationInSecs: 99_999 } }) }),
      status: 400,
      reason: /duration/,
    },
    {
      name: 'too much metadata',
      method: 'POST',
      path: '/eureka/apps/CART',
      headers: JSON_HEADERS,
      body: JSON.stringify({ instance: eurekaInstance({ metadata: Object.fromEntries(Array.from({ length: LIMITS.metadataEntries + 1 }, (_, i) => [`k${i}`, 'v'])) }) }),
      status: 400,
      reason: /metadata/,
    },
    { name: 'a heartbeat with a non-numeric lastDirtyTimestamp', method: 'PUT', path: '/eureka/apps/CART/cart-1.local?lastDirtyTimestamp=yesterday', status: 400, reason: /lastDirtyTimestamp/ },
    { name: 'an override to a lower-case status', method: 'PUT', path: '/eureka/apps/CART/cart-1.local/status?value=down', status: 400, reason: /value: must be one of/ },
    { name: 'an override without a value', method: 'PUT', path: '/eureka/apps/CART/cart-1.local/status', status: 400, reason: /value/ },
    { name: 'an override to UNKNOWN', method: 'PUT', path: '/eureka/apps/CART/cart-1.local/status?value=UNKNOWN', status: 400, reason: /UNKNOWN cannot be forced/ },
    { name: 'metadata with an empty key', method: 'PUT', path: '/eureka/apps/CART/cart-1.local/metadata?=v', status: 400, reason: /key/ },
    { name: 'an instance id with a space in a read', method: 'GET', path: '/eureka/apps/CART/a%20b', status: 400, reason: /instance_id/ },
    { name: 'a method the path does not take', method: 'PATCH', path: '/eureka/apps/CART', status: 405 },
    { name: 'an unknown path', method: 'GET', path: '/eureka/nothing/here', status: 404 },
  ];
  for (const c of cases) {
    test(`${c.status}: ${c.name}`, () =>
      withFace(async (h) => {
        await h.register();
        const before = JSON.stringify(h.registry.snapshot());
        const res = await h.call(c.method, c.path, { headers: c.headers, body: c.body });
        assert.equal(res.status, c.status, res.text);
        if (c.reason) assert.match(res.text, c.reason);
        assert.equal(JSON.stringify(h.registry.snapshot()), before, 'nothing changed');
        assert.equal((await h.call('GET', '/eureka/apps/CART/cart-1.local')).status, 200, 'the server still answers');
      }));
  }
});
