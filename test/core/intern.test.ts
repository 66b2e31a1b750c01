import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { sameMetadata, StringPool, UrlForm } from '../../src/core/intern.js';
import { registration } from './fixtures.js';

/** A map with the entries in the order given, `__proto__` as an own key like any other. */
function mapOf(pairs: readonly (readonly [string, string])[]): Record<string, string> {
  const m: Record<string, string> = {};
  for (const [k, v] of pairs) Object.defineProperty(m, k, { value: v, enumerable: true, writable: true, configurable: true });
  return m;
}

const key = fc.constantFrom('version', 'zone', 'team', '__proto__', '0', '10', 'a:b', '');
const value = fc.constantFrom('1', '2', '', 'a:b', 'é');
const pairs = fc.uniqueArray(fc.tuple(key, value), { selector: ([k]) => k, maxLength: 5 });

test('property: equal metadata maps in any key order share one pooled map; unequal ones never do', () => {
  const pool = new StringPool();
  fc.assert(
    fc.property(pairs, pairs, fc.boolean(), (a, b, reordered) => {
      const first = mapOf(a);
      const second = mapOf(reordered ? [...a].reverse() : b);
      const pa = pool.metadata(first);
      const pb = pool.metadata(second);
      assert.ok(sameMetadata(pa, first) && sameMetadata(pb, second) && Object.isFrozen(pa));
      // Keys in sorted order, as an object lists them (integer-like keys first).
      assert.deepEqual(Object.keys(pa), Object.keys(mapOf([...a].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))));
      const same = JSON.stringify(Object.entries(first).sort()) === JSON.stringify(Object.entries(second).sort());
      assert.equal(sameMetadata(first, second), same);
      assert.equal(pa === pb, same);
    }),
    { numRuns: 2_000 },
  );
});

test('a full pool still gives a sorted frozen map, made afresh', () => {
  const pool = new StringPool(0);
  const m = { zone: 'a', version: '1' };
  const pooled = pool.metadata(m);
  assert.deepEqual(Object.keys(pooled), ['version', 'zone']);
  assert.notEqual(pool.metadata(m), pooled);
});

test('property: a URL is given back as it was; a form is shared by the URLs with the same text around the cut', () => {
  const pool = new StringPool(1_000, 16);
  const part = fc.constantFrom('', 'http://', 'https://', ':8080/', ':8080/status', '/', 'x'.repeat(17));
  const host = fc.constantFrom('', 'h', 'billing-1.internal', '10.0.0.1');
  const ip = fc.constantFrom('', '10.0.0.1', '::1');
  fc.assert(
    fc.property(part, fc.constantFrom('host', 'ip', 'none'), part, host, ip, part, fc.constantFrom('host', 'ip', 'none'), part, (head, cut, tail, h, a, head2, cut2, tail2) => {
      const urlOf = (c: string, x: string, y: string) => `${x}${c === 'host' ? h : c === 'ip' ? a : 'other'}${y}`;
      const one = urlOf(cut, head, tail);
      const two = urlOf(cut2, head2, tail2);
      const f1 = pool.url(one, h, a);
      const f2 = pool.url(two, h, a);
      const rendered = (f: string | UrlForm) => (typeof f === 'string' ? f : f.render(f.kind === 'host' ? h : a));
      assert.equal(rendered(f1), one);
      assert.equal(rendered(f2), two);
      if (f1 instanceof UrlForm && f2 instanceof UrlForm) assert.equal(f1 === f2, f1.kind === f2.kind && f1.head === f2.head && f1.tail === f2.tail);
    }),
    { numRuns: 2_000 },
  );
});

test("an app's instances share its last profile while they agree; another shape makes (and becomes) the next", () => {
  const pool = new StringPool();
  const at = (host: string, port: number) => registration({ instanceId: `${host}:billing:${port}`, hostName: host, port: { number: port, enabled: true }, homePageUrl: `http://${host}:${port}/` });
  const first = pool.profile(at('h1', 8080));
  assert.equal(pool.profile(at('h2', 8080)), first); // another host, the same form of URL
  assert.ok(Object.isFrozen(first));
  const other = pool.profile(at('h3', 9090));
  assert.notEqual(other, first);
  assert.equal(other.port.number, 9090);
  const again = pool.profile(at('h4', 8080));
  assert.notEqual(again, first); // only the last is kept per app
  assert.deepEqual(again, first);
  assert.notEqual(pool.profile({ ...at('h5', 8080), app: 'orders' }), again);
});

test("property: a registration's profile describes it exactly, whether its app's last profile is taken or a new one made", () => {
  const pool = new StringPool(1_000, 16);
  // Hosts as long as an address or as the other text ('other'): a URL's text may have the cut's length and not be it.
  const host = fc.constantFrom('', 'h', 'h1', 'billing-1.internal', '10.0.0.1', 'host-one', 'hosts');
  const ip = fc.constantFrom('', '10.0.0.1', '10.0.0.12', '::1');
  const part = fc.constantFrom('', 'http://', 'grpc://', 'http://h', ':8080/', ':9090/', '/10.0.0.1', 'x'.repeat(17));
  const url = fc.tuple(part, fc.constantFrom('host', 'ip', 'none'), part);
  // Two deployments' shapes per run that differ in at most one field, so that registrations
  // often fit their app's last profile, and often fit it in all but one field.
  const shape = fc.record({
    home: url,
    status: url,
    health: url,
    port: fc.constantFrom(8080, 9090),
    secure: fc.boolean(),
    region: fc.constantFrom('r1', 'r2'),
    interval: fc.constantFrom(30, 10),
    duration: fc.constantFrom(90, 120),
  });
  const twoShapes = fc
    .tuple(shape, shape, fc.constantFrom('home', 'status', 'health', 'port', 'secure', 'region', 'interval', 'duration'))
    .map(([a, b, field]) => [a, { ...a, [field]: b[field] }] as const);
  const registrationOf = fc.record({ host, ip, shape: fc.nat(1) });
  let taken = 0;
  let last: unknown;
  fc.assert(
    fc.property(twoShapes, fc.array(registrationOf, { minLength: 1, maxLength: 8 }), (shapes, drawn) => {
      for (const one of drawn) {
        const d = { ...one, ...shapes[one.shape]! };
        const urlOf = ([head, cut, tail]: [string, string, string]) => `${head}${cut === 'host' ? d.host : cut === 'ip' ? d.ip : 'other'}${tail}`;
        const r = registration({
          hostName: d.host,
          ipAddr: d.ip,
          port: { number: d.port, enabled: true },
          securePort: { number: 8443, enabled: d.secure },
          region: d.region,
          renewalIntervalSecs: d.interval,
          durationSecs: d.duration,
          homePageUrl: urlOf(d.home),
          statusPageUrl: urlOf(d.status),
          healthCheckUrl: urlOf(d.health),
        });
        const p = pool.profile(r);
        if (p === last) taken++;
        last = p;
        const rendered = (f: string | UrlForm) => (typeof f === 'string' ? f : f.render(f.kind === 'host' ? r.hostName : r.ipAddr));
        assert.deepEqual([rendered(p.homePageUrl), rendered(p.statusPageUrl), rendered(p.healthCheckUrl)], [r.homePageUrl, r.statusPageUrl, r.healthCheckUrl]);
        assert.deepEqual([p.app, p.port, p.securePort, p.region, p.renewalIntervalSecs, p.durationSecs], [r.app, r.port, r.securePort, r.region, r.renewalIntervalSecs, r.durationSecs]);
      }
    }),
    { numRuns: 4_000 },
  );
  assert.ok(taken > 2_000, `the last profile was taken ${taken} times`);
});
