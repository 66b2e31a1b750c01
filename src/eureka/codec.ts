import { createRequire } from 'node:module';
import type * as FastXml from 'fast-xml-parser';
import { invalid } from '../core/errors.js';
import type { DocumentShape } from './gzip-document.js';
import { STATUSES, type ChangeType, type InstanceStatus, type InstanceView, type PortInfo, type RegistrationInput } from '../core/types.js';

/**
 * Eureka's wire format, both ways. Output is written directly, field for field in the order of
 * Eureka's Jackson codec (`EurekaJacksonCodec`) for JSON and of its XStream converters for XML,
 * one instance at a time, so a registry of 100k instances is encoded in slices without
 * building a document tree first. Input is parsed (XML into the same shape JSON has:
 * attributes as `@name`, element text as `$`) and read leniently, as the Eureka server reads it.
 */
export type EurekaFormat = 'json' | 'xml';

/** A parsed Eureka document or part of one. */
export type EurekaDoc = Record<string, unknown>;

/** The phantom class Eureka writes (and expects) for a plain data centre. */
const DEFAULT_DATA_CENTER_CLASS = 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo';
const DATA_CENTER_CLASSES = new Set([DEFAULT_DATA_CENTER_CLASS, 'com.netflix.appinfo.MyDataCenterInfo', 'com.netflix.appinfo.AmazonInfo']);
const EMPTY_METADATA_CLASS = 'java.util.Collections$EmptyMap';
/** Eureka's InstanceInfo defaults for a registration that names no port. */
const DEFAULT_PORT: PortInfo = { number: 7001, enabled: true };
const DEFAULT_SECURE_PORT: PortInfo = { number: 7002, enabled: false };
/** Eureka's countryId default (US); Roster has no such field and always writes it. */
const COUNTRY_ID = 1;

let xml: { readonly parser: FastXml.XMLParser; readonly validator: typeof FastXml.XMLValidator } | undefined;
/** fast-xml-parser, loaded with the first XML body: a node whose clients all send JSON never holds it (about 1 MiB). */
function xmlReader(): NonNullable<typeof xml> {
  if (xml !== undefined) return xml;
  const { XMLParser, XMLValidator } = createRequire(import.meta.url)('fast-xml-parser') as typeof FastXml;
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@',
    textNodeName: '$',
    parseTagValue: false,
    parseAttributeValue: false,
    processEntities: true,
    isArray: (_name, jpath) => LIST_PATHS.has(String(jpath)),
  });
  return (xml = { parser, validator: XMLValidator });
}
const LIST_PATHS = new Set(['applications.application', 'applications.application.instance', 'application.instance']);
// XML names XStream-encoded metadata keys can take; anything else cannot be an element name.
const XML_NAME = /^[A-Za-z_][A-Za-z0-9._-]*$/;
const ZONE = /^[\x21-\x7e]{1,64}$/;

/** Instances grouped by app, in the order given; `actionType` is set in deltas. */
export interface AppGroup {
  readonly app: string;
  readonly instances: readonly { readonly view: InstanceView; readonly actionType?: ChangeType }[];
}

/** Groups views (ordered by app, as the registry returns them) by app. */
export function groupByApp(views: readonly InstanceView[]): AppGroup[] {
  const groups: { app: string; instances: { view: InstanceView }[] }[] = [];
  for (const view of views) {
    const last = groups.at(-1);
    if (last && last.app === view.record.app) last.instances.push({ view });
    else groups.push({ app: view.record.app, instances: [{ view }] });
  }
  return groups;
}

/**
 * The fixed text of an `{"applications": {...}}` document (the registry, a delta or a VIP's
 * instances) around its instances: `versions__delta` is the node's revision and
 * `apps__hashcode` the counts per status, both written as strings.
 */
export function applicationsShape(revision: number, appsHashcode: string, format: EurekaFormat): DocumentShape {
  return format === 'json'
    ? {
        head: `{"applications":{"versions__delta":"${revision}","apps__hashcode":${JSON.stringify(appsHashcode)},"application":[`,
        appOpen: (app, first) => `${first ? '' : ','}{"name":${JSON.stringify(app.toUpperCase())},"instance":[`,
        separator: ',',
        appClose: ']}',
        tail: ']}}',
      }
    : {
        head: `<applications><versions__delta>${revision}</versions__delta>${xmlElement('apps__hashcode', appsHashcode)}`,
        appOpen: (app) => `<application><name>${xmlText(app.toUpperCase())}</name>`,
        separator: '',
        appClose: '</application>',
        tail: '</applications>',
      };
}

/** One instance as an element of an application's list (what {@link applicationsShape} surrounds). */
export function instanceElement(view: InstanceView, format: EurekaFormat, actionType?: ChangeType): string {
  return format === 'json' ? instanceJson(view, actionType) : instanceXml(view, actionType);
}

/** A document of {@link applicationsShape} in pieces: the head, one piece per instance, the tail. */
export function* applicationsParts(groups: Iterable<AppGroup>, revision: number, appsHashcode: string, format: EurekaFormat): Generator<string> {
  const shape = applicationsShape(revision, appsHashcode, format);
  yield shape.head;
  let firstApp = true;
  for (const group of groups) {
    yield* appParts(group, format, shape, firstApp);
    firstApp = false;
  }
  yield shape.tail;
}

function* appParts(group: AppGroup, format: EurekaFormat, shape: DocumentShape, first: boolean): Generator<string> {
  yield shape.appOpen(group.app, first);
  let firstInstance = true;
  for (const { view, actionType } of group.instances) {
    yield (firstInstance ? '' : shape.separator) + instanceElement(view, format, actionType);
    firstInstance = false;
  }
  yield shape.appClose;
}

/** `{"application": {"name": ..., "instance": [...]}}` / `<application>`, in pieces. */
export function* applicationParts(group: AppGroup, format: EurekaFormat): Generator<string> {
  if (format === 'json') yield '{"application":';
  yield* appParts(group, format, applicationsShape(0, '', format), true);
  if (format === 'json') yield '}';
}

/**
 * `{"instance": {...}}` / `<instance>`. `actionType` is the change that produced this version in
 * a delta; other reads say ADDED, as the Eureka server does for a registered instance.
 */
export function encodeInstance(view: InstanceView, format: EurekaFormat, actionType: ChangeType = 'ADDED'): string {
  return format === 'json' ? `{"instance":${instanceJson(view, actionType)}}` : instanceXml(view, actionType);
}

const q = JSON.stringify;

function instanceJson(view: InstanceView, actionType: ChangeType = 'ADDED'): string {
  const r = view.record;
  const l = view.lease;
  const metadata = Object.keys(r.metadata).length === 0 ? `{"@class":"${EMPTY_METADATA_CLASS}"}` : q(r.metadata);
  // Eureka omits unset (null) optional strings; an empty string is Roster's "unset".
  const optional = (name: string, value: string): string => (value === '' ? '' : `,"${name}":${q(value)}`);
  return (
    `{"instanceId":${q(r.instanceId)},"hostName":${q(r.hostName)},"app":${q(r.app.toUpperCase())},"ipAddr":${q(r.ipAddr)},` +
    // Jackson writes camelCase overriddenStatus, XStream lower case (Eureka issue #1051).
    `"status":"${r.status}","overriddenStatus":"${r.overriddenStatus ?? 'UNKNOWN'}",` +
    `"port":{"$":${r.port.number},"@enabled":"${r.port.enabled}"},"securePort":{"$":${r.securePort.number},"@enabled":"${r.securePort.enabled}"},` +
    `"countryId":${COUNTRY_ID},"dataCenterInfo":{"@class":"${DEFAULT_DATA_CENTER_CLASS}","name":"MyOwn"},` +
    `"leaseInfo":{"renewalIntervalInSecs":${r.renewalIntervalSecs},"durationInSecs":${r.durationSecs},` +
    `"registrationTimestamp":${l.registrationTimestamp},"lastRenewalTimestamp":${l.lastRenewalTimestamp},` +
    `"evictionTimestamp":${l.evictionTimestamp},"serviceUpTimestamp":${l.serviceUpTimestamp}},` +
    `"metadata":${metadata}` +
    optional('homePageUrl', r.homePageUrl) +
    optional('statusPageUrl', r.statusPageUrl) +
    optional('healthCheckUrl', r.healthCheckUrl) +
    optional('vipAddress', r.vipAddress) +
    optional('secureVipAddress', r.secureVipAddress) +
    `,"isCoordinatingDiscoveryServer":"false","lastUpdatedTimestamp":"${r.lastUpdatedTimestamp}",` +
    `"lastDirtyTimestamp":"${r.lastDirtyTimestamp}","actionType":"${actionType}"}`
  );
}

function instanceXml(view: InstanceView, actionType: ChangeType = 'ADDED'): string {
  const r = view.record;
  const l = view.lease;
  const optional = (name: string, value: string): string => (value === '' ? '' : xmlElement(name, value));
  return (
    `<instance>${xmlElement('instanceId', r.instanceId)}${xmlElement('hostName', r.hostName)}${xmlElement('app', r.app.toUpperCase())}` +
    `${xmlElement('ipAddr', r.ipAddr)}<status>${r.status}</status><overriddenstatus>${r.overriddenStatus ?? 'UNKNOWN'}</overriddenstatus>` +
    `<port enabled="${r.port.enabled}">${r.port.number}</port><securePort enabled="${r.securePort.enabled}">${r.securePort.number}</securePort>` +
    `<countryId>${COUNTRY_ID}</countryId><dataCenterInfo class="${DEFAULT_DATA_CENTER_CLASS}"><name>MyOwn</name></dataCenterInfo>` +
    `<leaseInfo><renewalIntervalInSecs>${r.renewalIntervalSecs}</renewalIntervalInSecs><durationInSecs>${r.durationSecs}</durationInSecs>` +
    `<registrationTimestamp>${l.registrationTimestamp}</registrationTimestamp><lastRenewalTimestamp>${l.lastRenewalTimestamp}</lastRenewalTimestamp>` +
    `<evictionTimestamp>${l.evictionTimestamp}</evictionTimestamp><serviceUpTimestamp>${l.serviceUpTimestamp}</serviceUpTimestamp></leaseInfo>` +
    metadataXml(r.metadata) +
    optional('homePageUrl', r.homePageUrl) +
    optional('statusPageUrl', r.statusPageUrl) +
    optional('healthCheckUrl', r.healthCheckUrl) +
    optional('vipAddress', r.vipAddress) +
    optional('secureVipAddress', r.secureVipAddress) +
    `<isCoordinatingDiscoveryServer>false</isCoordinatingDiscoveryServer><lastUpdatedTimestamp>${r.lastUpdatedTimestamp}</lastUpdatedTimestamp>` +
    `<lastDirtyTimestamp>${r.lastDirtyTimestamp}</lastDirtyTimestamp><actionType>${actionType}</actionType></instance>`
  );
}

function metadataXml(metadata: Readonly<Record<string, string>>): string {
  const keys = Object.keys(metadata);
  if (keys.length === 0) return `<metadata class="${EMPTY_METADATA_CLASS}"/>`;
  let out = '<metadata>';
  for (const key of keys) {
    const name = encodeXmlName(key);
    // XStream would write an invalid document; such keys are left out of XML (JSON has them all).
    if (XML_NAME.test(name)) out += xmlElement(name, metadata[key]!);
  }
  return out === '<metadata>' ? '<metadata/>' : `${out}</metadata>`;
}

/** `<name>text</name>`, or `<name/>` when empty, as XStream writes them. */
function xmlElement(name: string, text: string): string {
  return text === '' ? `<${name}/>` : `<${name}>${xmlText(text)}</${name}>`;
}

const XML_SPECIAL = /[&<>"'\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/;
const XML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Escapes markup; characters XML 1.0 cannot carry at all become U+FFFD. */
function xmlText(text: string): string {
  if (!XML_SPECIAL.test(text)) return text;
  return text.replace(new RegExp(XML_SPECIAL.source, 'g'), (c) => XML_ESCAPES[c] ?? '\ufffd');
}

/** XStream's XmlFriendlyNameCoder: `_` → `__`, `$` → `_-`. */
function encodeXmlName(key: string): string {
  return key.replace(/_/g, '__').replace(/\$/g, '_-');
}

function decodeXmlName(name: string): string {
  return name.replace(/__|_-/g, (m) => (m === '__' ? '_' : '$'));
}

/** Parses a JSON or XML body into a document; malformed input is refused naming `body`. */
export function decodeDoc(text: string, format: EurekaFormat): EurekaDoc {
  if (format === 'json') {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw invalid('body', `malformed JSON (${(err as Error).message})`);
    }
    if (!isObject(value)) throw invalid('body', 'must be a JSON object');
    return value;
  }
  const { parser, validator } = xmlReader();
  const valid = validator.validate(text);
  if (valid !== true) throw invalid('body', `malformed XML (${valid.err.msg})`);
  const value: unknown = parser.parse(text);
  if (!isObject(value)) throw invalid('body', 'must be an XML document');
  return value;
}

/**
 * Reads a registration the way Eureka's server does: lenient about numbers as strings, a port
 * without `@enabled`, unknown fields and a lower-case status (stored as UNKNOWN); strict about
 * what it needs (host name, IP, app, data centre with a known `@class`, ports as objects in
 * JSON). A missing `instanceId` becomes the host name. `pathApp` must match the body's app.
 */
export function registrationFromDoc(doc: EurekaDoc, format: EurekaFormat, pathApp: string): RegistrationInput {
  const instance = doc.instance;
  if (!isObject(instance)) throw invalid('instance', 'is required: the body must be {"instance": {...}}');
  const hostName = required(instance, 'hostName');
  const app = required(instance, 'app');
  if (app.toUpperCase() !== pathApp.toUpperCase()) {
    throw invalid('instance.app', `mismatched appName, expecting ${pathApp.toUpperCase()} but was ${app.toUpperCase()}`);
  }
  const ipAddr = required(instance, 'ipAddr');
  checkDataCenter(instance.dataCenterInfo, format);
  const metadata = readMetadata(instance.metadata, format);
  const lease = instance.leaseInfo;
  if (lease !== undefined && lease !== null && lease !== '' && !isObject(lease)) throw invalid('instance.leaseInfo', 'must be an object');
  const leaseObj = isObject(lease) ? lease : {};
  const zone = metadata.zone ?? '';
  return {
    app,
    instanceId: optional(instance, 'instanceId') || hostName,
    hostName,
    ipAddr,
    port: readPort(instance, 'port', DEFAULT_PORT, format),
    securePort: readPort(instance, 'securePort', DEFAULT_SECURE_PORT, format),
    status: readStatus(instance.status),
    vipAddress: optional(instance, 'vipAddress'),
    secureVipAddress: optional(instance, 'secureVipAddress'),
    // Eureka keeps the zone in metadata (Spring Cloud's `eureka.instance.metadata-map.zone`).
    zone: ZONE.test(zone) ? zone : '',
    region: '',
    metadata,
    homePageUrl: optional(instance, 'homePageUrl'),
    statusPageUrl: optional(instance, 'statusPageUrl'),
    healthCheckUrl: optional(instance, 'healthCheckUrl'),
    renewalIntervalSecs: integer(leaseObj.renewalIntervalInSecs, 'instance.leaseInfo.renewalIntervalInSecs') ?? 0,
    durationSecs: integer(leaseObj.durationInSecs, 'instance.leaseInfo.durationInSecs') ?? 0,
    lastDirtyTimestamp: integer(instance.lastDirtyTimestamp, 'instance.lastDirtyTimestamp') ?? 0,
  };
}

function isObject(value: unknown): value is EurekaDoc {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A scalar as Jackson's getText would read it; absent or null → undefined. */
function scalar(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw invalid(field, 'must be a string');
}

function optional(o: EurekaDoc, key: string): string {
  return scalar(o[key], `instance.${key}`) ?? '';
}

function required(o: EurekaDoc, key: string): string {
  const value = optional(o, key);
  if (value === '') throw invalid(`instance.${key}`, 'is required');
  return value;
}

/** An integer given as a number or a string of digits; absent, null or empty → undefined. */
export function integer(value: unknown, field: string): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n = typeof value === 'string' && /^-?\d{1,16}$/.test(value.trim()) ? Number(value.trim()) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw invalid(field, 'must be an integer');
  return n;
}

function readStatus(value: unknown): InstanceStatus {
  const text = scalar(value, 'instance.status');
  if (text === undefined || text === '') return 'UP';
  // Eureka's enum lookup is case-sensitive and falls back to UNKNOWN.
  return (STATUSES as readonly string[]).includes(text) ? (text as InstanceStatus) : 'UNKNOWN';
}

function readPort(o: EurekaDoc, key: 'port' | 'securePort', fallback: PortInfo, format: EurekaFormat): PortInfo {
  const field = `instance.${key}`;
  const value = o[key];
  if (value === undefined || value === null) return fallback;
  if (format === 'xml' && typeof value === 'string') {
    return { number: integer(value, field) ?? fallback.number, enabled: fallback.enabled };
  }
  if (!isObject(value)) throw invalid(field, `must be an object like {"$": 8080, "@enabled": "true"}`);
  const number = integer(value.$, `${field}.$`) ?? fallback.number;
  const flag = value['@enabled'];
  if (flag === undefined || flag === null) return { number, enabled: fallback.enabled };
  if (format === 'xml') {
    // XStream: a port is enabled unless "false", a secure port only when "true".
    return { number, enabled: key === 'port' ? flag !== 'false' : flag === 'true' };
  }
  return { number, enabled: flag === true || flag === 'true' || (typeof flag === 'number' && flag !== 0) };
}

function checkDataCenter(value: unknown, format: EurekaFormat): void {
  const field = 'instance.dataCenterInfo';
  if (!isObject(value)) throw invalid(field, 'is required');
  const cls = value['@class'];
  if (cls === undefined && format === 'json') throw invalid(`${field}.@class`, 'is required');
  if (cls !== undefined && (typeof cls !== 'string' || !DATA_CENTER_CLASSES.has(cls))) {
    throw invalid(`${field}.@class`, `unknown class ${JSON.stringify(cls)}`);
  }
  const name = scalar(value.name, `${field}.name`);
  if (name === undefined || name === '') throw invalid(`${field}.name`, 'is required');
  if (name !== 'MyOwn') throw invalid(`${field}.name`, `only MyOwn is supported, got ${JSON.stringify(name)}`);
}

function readMetadata(value: unknown, format: EurekaFormat): Record<string, string> {
  if (value === undefined || value === null || value === '') return {};
  if (!isObject(value)) throw invalid('instance.metadata', 'must be an object');
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(value)) {
    if (name === '@class') continue;
    const key = format === 'xml' ? decodeXmlName(name) : name;
    const text = scalar(v, `instance.metadata.${key}`);
    if (text !== undefined) out[key] = text;
  }
  return out;
}
