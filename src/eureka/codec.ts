import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import { invalid } from '../core/errors.js';
import { STATUSES, type ChangeType, type InstanceStatus, type InstanceView, type PortInfo, type RegistrationInput } from '../core/types.js';

/**
 * Eureka's wire format, both ways. Documents are built once as plain objects in the shape of
 * Eureka's Jackson codec (`EurekaJacksonCodec`), field order included; JSON is that object
 * stringified and XML is the same object through an XML builder whose conventions match
 * XStream's (attributes as `@name`, element text as `$`), so both formats carry the same data.
 */
export type EurekaFormat = 'json' | 'xml';

/** A Eureka document or part of one. */
export type EurekaDoc = Record<string, unknown>;

/** The phantom class Eureka writes (and expects) for a plain data centre. */
export const DEFAULT_DATA_CENTER_CLASS = 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo';
const DATA_CENTER_CLASSES = new Set([DEFAULT_DATA_CENTER_CLASS, 'com.netflix.appinfo.MyDataCenterInfo', 'com.netflix.appinfo.AmazonInfo']);
const EMPTY_METADATA_CLASS = 'java.util.Collections$EmptyMap';
/** Eureka's InstanceInfo defaults for a registration that names no port. */
const DEFAULT_PORT: PortInfo = { number: 7001, enabled: true };
const DEFAULT_SECURE_PORT: PortInfo = { number: 7002, enabled: false };
/** Eureka's countryId default (US); Roster has no such field and always writes it. */
const COUNTRY_ID = 1;

const XML_OPTIONS = { ignoreAttributes: false, attributeNamePrefix: '@', textNodeName: '$' } as const;
// Empty elements as `<x/>`, attribute values always written out (`enabled="true"`), as XStream does.
const xmlBuilder = new XMLBuilder({ ...XML_OPTIONS, suppressBooleanAttributes: false, suppressEmptyNode: true });
const xmlParser = new XMLParser({
  ...XML_OPTIONS,
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: true,
  isArray: (_name, jpath) => LIST_PATHS.has(String(jpath)),
});
const LIST_PATHS = new Set(['applications.application', 'applications.application.instance', 'application.instance']);
// XML names XStream-encoded metadata keys can take; anything else cannot be an element name.
const XML_NAME = /^[A-Za-z_][A-Za-z0-9._-]*$/;
const ZONE = /^[\x21-\x7e]{1,64}$/;

/**
 * One instance as Eureka writes it. `actionType` is the change that produced this version in
 * a delta; full reads say ADDED, as the Eureka server does for a registered instance.
 */
export function instanceDoc(view: InstanceView, format: EurekaFormat, actionType: ChangeType = 'ADDED'): EurekaDoc {
  const r = view.record;
  const lease = view.lease;
  const doc: EurekaDoc = {
    instanceId: r.instanceId,
    hostName: r.hostName,
    app: r.app.toUpperCase(),
    ipAddr: r.ipAddr,
    status: r.status,
    // Jackson writes camelCase, XStream lower case (Eureka issue #1051).
    [format === 'json' ? 'overriddenStatus' : 'overriddenstatus']: r.overriddenStatus ?? 'UNKNOWN',
    port: { $: r.port.number, '@enabled': String(r.port.enabled) },
    securePort: { $: r.securePort.number, '@enabled': String(r.securePort.enabled) },
    countryId: COUNTRY_ID,
    dataCenterInfo: { '@class': DEFAULT_DATA_CENTER_CLASS, name: 'MyOwn' },
    leaseInfo: {
      renewalIntervalInSecs: r.renewalIntervalSecs,
      durationInSecs: r.durationSecs,
      registrationTimestamp: lease.registrationTimestamp,
      lastRenewalTimestamp: lease.lastRenewalTimestamp,
      evictionTimestamp: lease.evictionTimestamp,
      serviceUpTimestamp: lease.serviceUpTimestamp,
    },
    metadata: metadataDoc(r.metadata, format),
  };
  // Eureka omits unset (null) optional strings; an empty string is Roster's "unset".
  if (r.homePageUrl !== '') doc.homePageUrl = r.homePageUrl;
  if (r.statusPageUrl !== '') doc.statusPageUrl = r.statusPageUrl;
  if (r.healthCheckUrl !== '') doc.healthCheckUrl = r.healthCheckUrl;
  if (r.vipAddress !== '') doc.vipAddress = r.vipAddress;
  if (r.secureVipAddress !== '') doc.secureVipAddress = r.secureVipAddress;
  doc.isCoordinatingDiscoveryServer = 'false';
  doc.lastUpdatedTimestamp = String(r.lastUpdatedTimestamp);
  doc.lastDirtyTimestamp = String(r.lastDirtyTimestamp);
  doc.actionType = actionType;
  return doc;
}

function metadataDoc(metadata: Readonly<Record<string, string>>, format: EurekaFormat): EurekaDoc {
  const keys = Object.keys(metadata);
  if (keys.length === 0) return { '@class': EMPTY_METADATA_CLASS };
  if (format === 'json') return { ...metadata };
  const out: EurekaDoc = {};
  for (const key of keys) {
    const name = encodeXmlName(key);
    // XStream would write an invalid document; such keys are left out of XML (JSON has them all).
    if (XML_NAME.test(name)) out[name] = metadata[key];
  }
  return out;
}

/** XStream's XmlFriendlyNameCoder: `_` → `__`, `$` → `_-`. */
function encodeXmlName(key: string): string {
  return key.replace(/_/g, '__').replace(/\$/g, '_-');
}

function decodeXmlName(name: string): string {
  return name.replace(/__|_-/g, (m) => (m === '__' ? '_' : '$'));
}

/** Instances grouped by app, in the order given. */
export interface AppGroup {
  readonly app: string;
  readonly instances: readonly { readonly view: InstanceView; readonly actionType?: ChangeType }[];
}

/**
 * `{"applications": {...}}`: the registry, a delta or a VIP's instances. `versions__delta` is the
 * node's revision and `apps__hashcode` the whole registry's counts per status, both as strings.
 */
export function applicationsDoc(groups: Iterable<AppGroup>, revision: number, appsHashcode: string, format: EurekaFormat): EurekaDoc {
  const application: EurekaDoc[] = [];
  for (const group of groups) application.push(appBody(group, format));
  return { applications: { versions__delta: String(revision), apps__hashcode: appsHashcode, application } };
}

/** `{"application": {"name": ..., "instance": [...]}}`. */
export function applicationDoc(group: AppGroup, format: EurekaFormat): EurekaDoc {
  return { application: appBody(group, format) };
}

function appBody(group: AppGroup, format: EurekaFormat): EurekaDoc {
  return { name: group.app.toUpperCase(), instance: group.instances.map((i) => instanceDoc(i.view, format, i.actionType)) };
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

export function encodeDoc(doc: EurekaDoc, format: EurekaFormat): string {
  return format === 'json' ? JSON.stringify(doc) : (xmlBuilder.build(doc) as string);
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
  const valid = XMLValidator.validate(text);
  if (valid !== true) throw invalid('body', `malformed XML (${valid.err.msg})`);
  const value: unknown = xmlParser.parse(text);
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
