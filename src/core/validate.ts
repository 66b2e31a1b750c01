import { invalid } from './errors.js';
import { STATUSES, type InstanceStatus, type PortInfo, type RegistrationInput } from './types.js';

/** Input bounds. Each is a reason to refuse, named in the error, before anything changes. */
export const LIMITS = {
  appLength: 128,
  instanceIdLength: 256,
  hostNameLength: 253,
  ipAddrLength: 45,
  locationLength: 64,
  vipLength: 1024,
  urlLength: 2048,
  metadataEntries: 64,
  metadataKeyLength: 128,
  metadataValueLength: 1024,
  metadataTotalBytes: 16 * 1024,
  renewalIntervalSecs: { min: 1, max: 300 },
  durationSecs: { min: 1, max: 3600 },
} as const;

const APP_PATTERN = /^[A-Za-z0-9._-]+$/;
const INSTANCE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;
// Printable, no whitespace: host names, IPs, URLs, zones.
const TOKEN_PATTERN = /^[\x21-\x7e]*$/;
// VIP lists are comma-separated and may have spaces after the commas.
const VIP_LIST_PATTERN = /^[\x20-\x7e]*$/;

/** Validates and lower-cases an app name. */
export function checkApp(app: string, field = 'app'): string {
  if (app.length === 0) throw invalid(field, 'is required');
  if (app.length > LIMITS.appLength) throw invalid(field, `longer than ${LIMITS.appLength} characters`);
  if (!APP_PATTERN.test(app)) throw invalid(field, 'may contain only letters, digits, ".", "_" and "-"');
  return app.toLowerCase();
}

export function checkInstanceId(id: string, field = 'instance_id'): string {
  if (id.length === 0) throw invalid(field, 'is required');
  if (id.length > LIMITS.instanceIdLength) throw invalid(field, `longer than ${LIMITS.instanceIdLength} characters`);
  if (!INSTANCE_ID_PATTERN.test(id)) {
    throw invalid(field, 'must start with a letter or digit and contain only letters, digits, ".", "_", ":", "@" and "-"');
  }
  return id;
}

/**
 * The latest version a record may carry (the end of year 9999, in epoch ms): far below 2^53, so
 * `version + 1` and the other version arithmetic can never leave the safe integers.
 */
export const MAX_TIMESTAMP_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

export function checkDirtyTimestamp(ts: number, field = 'last_dirty_timestamp'): number {
  if (!Number.isSafeInteger(ts) || ts < 0 || ts > MAX_TIMESTAMP_MS) {
    throw invalid(field, `must be an epoch-milliseconds integer in 0..${MAX_TIMESTAMP_MS}`);
  }
  return ts;
}

export function checkStatus(status: string, field: string): InstanceStatus {
  if (!(STATUSES as readonly string[]).includes(status)) throw invalid(field, `unknown status ${JSON.stringify(status)}`);
  return status as InstanceStatus;
}

function checkToken(value: string, field: string, max: number, pattern = TOKEN_PATTERN): void {
  if (value.length > max) throw invalid(field, `longer than ${max} characters`);
  if (!pattern.test(value)) {
    throw invalid(field, pattern === TOKEN_PATTERN ? 'must be printable ASCII without spaces' : 'must be printable ASCII');
  }
}

function checkPort(port: PortInfo, field: string): void {
  if (!Number.isInteger(port.number) || port.number < 0 || port.number > 65535) {
    throw invalid(`${field}.number`, 'must be 0..65535');
  }
  if (port.enabled && port.number === 0) throw invalid(`${field}.number`, 'an enabled port must be 1..65535');
}

/** Validates a whole metadata map against the size bounds. */
export function checkMetadata(metadata: Readonly<Record<string, string>>, field: string): void {
  // for-in, not Object.entries: no array of pairs per write.
  let count = 0;
  let chars = 0;
  for (const key in metadata) {
    if (!Object.hasOwn(metadata, key)) continue;
    if (++count > LIMITS.metadataEntries) throw invalid(field, `more than ${LIMITS.metadataEntries} entries`);
    const value = metadata[key]!;
    if (key.length === 0 || key.length > LIMITS.metadataKeyLength) {
      throw invalid(field, `key ${JSON.stringify(key.slice(0, 40))} must be 1..${LIMITS.metadataKeyLength} characters`);
    }
    if (value.length > LIMITS.metadataValueLength) {
      throw invalid(field, `value of ${JSON.stringify(key)} longer than ${LIMITS.metadataValueLength} characters`);
    }
    chars += key.length + value.length;
  }
  // A UTF-16 code unit is at most 3 bytes of UTF-8: only a map near the bound is measured in bytes.
  if (chars * 3 > LIMITS.metadataTotalBytes && utf8Bytes(metadata) > LIMITS.metadataTotalBytes) {
    throw invalid(field, `larger than ${LIMITS.metadataTotalBytes} bytes in all`);
  }
}

function utf8Bytes(metadata: Readonly<Record<string, string>>): number {
  let total = 0;
  for (const key in metadata) if (Object.hasOwn(metadata, key)) total += Buffer.byteLength(key) + Buffer.byteLength(metadata[key]!);
  return total;
}

function checkRange(value: number, field: string, range: { min: number; max: number }): void {
  if (!Number.isInteger(value) || value < range.min || value > range.max) {
    throw invalid(field, `must be ${range.min}..${range.max} (0 for the default)`);
  }
}

/**
 * Validates a registration and returns it normalised: app lower-cased, lease defaults
 * applied. Field names are proto paths under `instance.`.
 */
export function checkRegistration(input: RegistrationInput, defaults: { renewalIntervalSecs: number; durationSecs: number }): RegistrationInput {
  const app = checkApp(input.app, 'instance.app');
  checkInstanceId(input.instanceId, 'instance.instance_id');
  checkToken(input.hostName, 'instance.host_name', LIMITS.hostNameLength);
  checkToken(input.ipAddr, 'instance.ip_addr', LIMITS.ipAddrLength);
  checkPort(input.port, 'instance.port');
  checkPort(input.securePort, 'instance.secure_port');
  checkStatus(input.status, 'instance.status');
  checkToken(input.vipAddress, 'instance.vip_address', LIMITS.vipLength, VIP_LIST_PATTERN);
  checkToken(input.secureVipAddress, 'instance.secure_vip_address', LIMITS.vipLength, VIP_LIST_PATTERN);
  checkToken(input.zone, 'instance.zone', LIMITS.locationLength);
  checkToken(input.region, 'instance.region', LIMITS.locationLength);
  checkMetadata(input.metadata, 'instance.metadata');
  checkToken(input.homePageUrl, 'instance.home_page_url', LIMITS.urlLength);
  checkToken(input.statusPageUrl, 'instance.status_page_url', LIMITS.urlLength);
  checkToken(input.healthCheckUrl, 'instance.health_check_url', LIMITS.urlLength);
  checkDirtyTimestamp(input.lastDirtyTimestamp, 'instance.last_dirty_timestamp');
  const renewalIntervalSecs = input.renewalIntervalSecs || defaults.renewalIntervalSecs;
  const durationSecs = input.durationSecs || defaults.durationSecs;
  checkRange(renewalIntervalSecs, 'instance.lease.renewal_interval_secs', LIMITS.renewalIntervalSecs);
  checkRange(durationSecs, 'instance.lease.duration_secs', LIMITS.durationSecs);
  if (durationSecs < renewalIntervalSecs) {
    throw invalid('instance.lease.duration_secs', 'must be at least the renewal interval');
  }
  // Field by field, not `{...input}`: a stored record's URLs and timestamps are getters (core/entry.ts).
  return {
    app,
    instanceId: input.instanceId,
    hostName: input.hostName,
    ipAddr: input.ipAddr,
    port: input.port,
    securePort: input.securePort,
    status: input.status,
    vipAddress: input.vipAddress,
    secureVipAddress: input.secureVipAddress,
    zone: input.zone,
    region: input.region,
    metadata: input.metadata,
    homePageUrl: input.homePageUrl,
    statusPageUrl: input.statusPageUrl,
    healthCheckUrl: input.healthCheckUrl,
    renewalIntervalSecs,
    durationSecs,
    lastDirtyTimestamp: input.lastDirtyTimestamp,
  };
}
