import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import { RegistryError } from '../../src/core/errors.js';
import { Registry } from '../../src/core/registry.js';
import { applicationsParts, decodeDoc, encodeInstance, groupByApp, registrationFromDoc, type EurekaDoc, type EurekaFormat } from '../../src/eureka/codec.js';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
/** The fixtures are indented for reading; the codec writes compact documents. */
const compactJson = (text: string): string => JSON.stringify(JSON.parse(text));
const compactXml = (text: string): string => text.replace(/>\s+</g, '><').trim();

/** Registers every instance of an `applications` document into a fresh registry on a fake clock. */
function registryFrom(doc: EurekaDoc, format: EurekaFormat): Registry {
  const registry = new Registry({ clock: new FakeClock() });
  const apps = (doc.applications as EurekaDoc).application as EurekaDoc[];
  for (const app of apps) {
    for (const instance of app.instance as EurekaDoc[]) {
      registry.register(registrationFromDoc({ instance }, format, String(app.name)));
    }
  }
  return registry;
}

function encodeRegistry(registry: Registry, format: EurekaFormat): string {
  const snapshot = registry.snapshot();
  return [...applicationsParts(groupByApp(snapshot.instances), snapshot.revision, snapshot.reconcileHash, format)].join('');
}

const MINIMAL = {
  app: 'CART',
  hostName: 'cart-1.local',
  ipAddr: '10.0.0.9',
  dataCenterInfo: { '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo', name: 'MyOwn' },
};
const read = (instance: Record<string, unknown>, format: EurekaFormat = 'json') => registrationFromDoc({ instance }, format, 'cart');

describe('golden fixtures (Eureka codec shapes)', () => {
  test('JSON: decoded, registered and encoded again, the fixture comes back byte for byte', () => {
    const text = fixture('applications.json');
    const registry = registryFrom(decodeDoc(text, 'json'), 'json');
    assert.equal(encodeRegistry(registry, 'json'), compactJson(text));
  });

  test('XML: decoded, registered and encoded again, the fixture comes back byte for byte', () => {
    const text = fixture('applications.xml');
    const registry = registryFrom(decodeDoc(text, 'xml'), 'xml');
    assert.equal(encodeRegistry(registry, 'xml'), compactXml(text));
  });

  test('the JSON fixture read in gives the XML fixture out, and the other way round', () => {
    assert.equal(encodeRegistry(registryFrom(decodeDoc(fixture('applications.json'), 'json'), 'json'), 'xml'), compactXml(fixture('applications.xml')));
    assert.equal(encodeRegistry(registryFrom(decodeDoc(fixture('applications.xml'), 'xml'), 'xml'), 'json'), compactJson(fixture('applications.json')));
  });

  test('an override is written as overriddenStatus in JSON and overriddenstatus in XML', () => {
    const registry = new Registry({ clock: new FakeClock() });
    registry.register(read(MINIMAL));
    const view = registry.setStatusOverride('cart', 'cart-1.local', 'OUT_OF_SERVICE');
    const json = (JSON.parse(encodeInstance(view, 'json')) as { instance: Record<string, unknown> }).instance;
    assert.deepEqual([json.status, json.overriddenStatus, json.overriddenstatus], ['OUT_OF_SERVICE', 'OUT_OF_SERVICE', undefined]);
    const xml = encodeInstance(view, 'xml');
    assert.match(xml, /<overriddenstatus>OUT_OF_SERVICE<\/overriddenstatus>/);
    assert.doesNotMatch(xml, /overriddenStatus/);
  });

  test('an empty registry: hash "" and no applications', () => {
    const registry = new Registry({ clock: new FakeClock() });
    assert.equal(encodeRegistry(registry, 'json'), '{"applications":{"versions__delta":"0","apps__hashcode":"","application":[]}}');
    assert.equal(encodeRegistry(registry, 'xml'), '<applications><versions__delta>0</versions__delta><apps__hashcode/></applications>');
  });

  test('metadata keys that cannot be XML names are left out of XML only; $ and _ are XStream-encoded', () => {
    const registry = new Registry({ clock: new FakeClock() });
    registry.register(read({ ...MINIMAL, metadata: { 'a b': '1', cost$: '2', '9lives': '3', ok_1: '4' } }));
    const view = registry.get('cart', 'cart-1.local');
    const json = JSON.parse(encodeInstance(view, 'json')) as { instance: { metadata: unknown } };
    assert.deepEqual(json.instance.metadata, { '9lives': '3', 'a b': '1', cost$: '2', ok_1: '4' });
    const xml = encodeInstance(view, 'xml');
    assert.match(xml, /<metadata><cost_->2<\/cost_-><ok__1>4<\/ok__1><\/metadata>/);
    assert.deepEqual(registrationFromDoc(decodeDoc(xml, 'xml'), 'xml', 'cart').metadata, { cost$: '2', ok_1: '4' });
  });

  test('XML text is escaped and characters XML cannot carry are replaced; both read back', () => {
    const registry = new Registry({ clock: new FakeClock() });
    registry.register(read({ ...MINIMAL, metadata: { note: `a<b & "c" 'd' \u0001 é` } }));
    const view = registry.get('cart', 'cart-1.local');
    const xml = encodeInstance(view, 'xml');
    assert.match(xml, /<note>a&lt;b &amp; &quot;c&quot; &apos;d&apos; \ufffd é<\/note>/);
    assert.equal(registrationFromDoc(decodeDoc(xml, 'xml'), 'xml', 'cart').metadata.note, `a<b & "c" 'd' \ufffd é`);
    assert.equal(registrationFromDoc(decodeDoc(encodeInstance(view, 'json'), 'json'), 'json', 'cart').metadata.note, `a<b & "c" 'd' \u0001 é`);
  });
});

describe('lenient input, as the Eureka server reads it', () => {
  test('a missing instanceId becomes the host name; defaults follow Eureka (ports 7001/7002, status UP)', () => {
    const r = read(MINIMAL);
    assert.equal(r.instanceId, 'cart-1.local');
    assert.deepEqual(r.port, { number: 7001, enabled: true });
    assert.deepEqual(r.securePort, { number: 7002, enabled: false });
    assert.equal(r.status, 'UP');
    assert.equal(r.renewalIntervalSecs, 0);
    assert.equal(r.lastDirtyTimestamp, 0);
  });

  const cases: { name: string; input: Record<string, unknown>; check: (r: ReturnType<typeof read>) => void }[] = [
    { name: '"$" as a string, @enabled as a boolean', input: { port: { $: '8080', '@enabled': true } }, check: (r) => assert.deepEqual(r.port, { number: 8080, enabled: true }) },
    { name: '@enabled as a string', input: { securePort: { $: 8443, '@enabled': 'true' } }, check: (r) => assert.deepEqual(r.securePort, { number: 8443, enabled: true }) },
    { name: 'a port without @enabled keeps the default flag', input: { port: { $: 9000 } }, check: (r) => assert.deepEqual(r.port, { number: 9000, enabled: true }) },
    { name: 'a lower-case status is stored as UNKNOWN', input: { status: 'up' }, check: (r) => assert.equal(r.status, 'UNKNOWN') },
    {
      name: 'lease numbers and lastDirtyTimestamp as strings',
      input: { leaseInfo: { renewalIntervalInSecs: '5', durationInSecs: '15' }, lastDirtyTimestamp: '1700000000000' },
      check: (r) => assert.deepEqual([r.renewalIntervalSecs, r.durationSecs, r.lastDirtyTimestamp], [5, 15, 1700000000000]),
    },
    { name: 'unknown scalar and object fields are ignored', input: { sid: 'x', countryId: 1, asgName: 'asg', appGroupName: 'G', somethingNew: { a: 1 } }, check: (r) => assert.equal(r.app, 'CART') },
    {
      name: 'metadata @class is skipped, scalars become strings, null values are dropped',
      input: { metadata: { '@class': 'java.util.Collections$EmptyMap', n: 5, b: false, gone: null } },
      check: (r) => assert.deepEqual(r.metadata, { n: '5', b: 'false' }),
    },
    { name: 'the zone comes from metadata.zone', input: { metadata: { zone: 'eu-1a' } }, check: (r) => assert.equal(r.zone, 'eu-1a') },
    {
      name: 'MyDataCenterInfo is the same as the default class',
      input: { dataCenterInfo: { '@class': 'com.netflix.appinfo.MyDataCenterInfo', name: 'MyOwn' } },
      check: (r) => assert.equal(r.hostName, 'cart-1.local'),
    },
    { name: 'null fields count as absent', input: { vipAddress: null, leaseInfo: null }, check: (r) => assert.equal(r.vipAddress, '') },
    { name: 'the body app may differ in case from the path', input: { app: 'cart' }, check: (r) => assert.equal(r.app, 'cart') },
  ];
  for (const c of cases) {
    test(`accepted: ${c.name}`, () => c.check(read({ ...MINIMAL, ...c.input })));
  }

  test('XML: a port without the enabled attribute, and XStream defaults for the flags', () => {
    const xml = `<instance><app>CART</app><hostName>h</hostName><ipAddr>1.2.3.4</ipAddr><port>8080</port><securePort enabled="yes">8443</securePort>
      <dataCenterInfo><name>MyOwn</name></dataCenterInfo><metadata/></instance>`;
    const r = registrationFromDoc(decodeDoc(xml, 'xml'), 'xml', 'cart');
    assert.deepEqual([r.port, r.securePort, r.metadata], [{ number: 8080, enabled: true }, { number: 8443, enabled: false }, {}]);
  });
});

describe('refused input names the field', () => {
  const refusals: { name: string; input: Record<string, unknown>; field: string }[] = [
    { name: 'no host name', input: { hostName: '' }, field: 'instance.hostName' },
    { name: 'no IP address', input: { ipAddr: undefined }, field: 'instance.ipAddr' },
    { name: 'no app', input: { app: undefined }, field: 'instance.app' },
    { name: 'an app other than the path', input: { app: 'OTHER' }, field: 'instance.app' },
    { name: 'no dataCenterInfo', input: { dataCenterInfo: undefined }, field: 'instance.dataCenterInfo' },
    { name: 'dataCenterInfo without @class', input: { dataCenterInfo: { name: 'MyOwn' } }, field: 'instance.dataCenterInfo.@class' },
    { name: 'an unknown @class', input: { dataCenterInfo: { '@class': 'com.example.Mine', name: 'MyOwn' } }, field: 'instance.dataCenterInfo.@class' },
    { name: 'dataCenterInfo without a name', input: { dataCenterInfo: { '@class': 'com.netflix.appinfo.MyDataCenterInfo' } }, field: 'instance.dataCenterInfo.name' },
    { name: 'an Amazon data centre (not supported)', input: { dataCenterInfo: { '@class': 'com.netflix.appinfo.AmazonInfo', name: 'Amazon' } }, field: 'instance.dataCenterInfo.name' },
    { name: 'a bare-number port', input: { port: 8080 }, field: 'instance.port' },
    { name: 'a bare-string port', input: { port: '8080' }, field: 'instance.port' },
    { name: 'a port number that is not a number', input: { port: { $: 'http' } }, field: 'instance.port.$' },
    { name: 'a host name that is an object', input: { hostName: { a: 1 } }, field: 'instance.hostName' },
    { name: 'a metadata value that is an object', input: { metadata: { k: { nested: 1 } } }, field: 'instance.metadata.k' },
    { name: 'metadata that is a list', input: { metadata: ['a'] }, field: 'instance.metadata' },
    { name: 'a lease duration that is not a number', input: { leaseInfo: { durationInSecs: 'long' } }, field: 'instance.leaseInfo.durationInSecs' },
    { name: 'a fractional dirty timestamp', input: { lastDirtyTimestamp: 1.5 }, field: 'instance.lastDirtyTimestamp' },
  ];
  for (const c of refusals) {
    test(`refused: ${c.name}`, () => {
      assert.throws(
        () => read({ ...MINIMAL, ...c.input }),
        (err: unknown) => err instanceof RegistryError && err.kind === 'invalid_argument' && err.field === c.field,
      );
    });
  }

  test('a body without the instance wrapper, malformed JSON and malformed XML', () => {
    const invalidField = (field: string) => (err: unknown) => err instanceof RegistryError && err.field === field;
    assert.throws(() => registrationFromDoc(MINIMAL, 'json', 'cart'), invalidField('instance'));
    assert.throws(() => decodeDoc('{"instance":', 'json'), invalidField('body'));
    assert.throws(() => decodeDoc('[1]', 'json'), invalidField('body'));
    assert.throws(() => decodeDoc('<instance><app>x</instance>', 'xml'), invalidField('body'));
  });
});
