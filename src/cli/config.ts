import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import * as check from '../security/checks.js';

/** A setting: how to validate it, its default, how to read it from a string (env, flag), its help. */
interface Setting<T> {
  readonly check: check.Check<T>;
  readonly fallback: () => T;
  readonly fromString: (raw: string) => unknown;
  readonly help: string;
  /** Never echoed back: an error names the setting and the value's length only. */
  readonly secret?: boolean;
}

const asInt = (raw: string): unknown => (/^-?\d+$/.test(raw.trim()) ? Number(raw) : raw);
const asBool = (raw: string): unknown => {
  const v = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return raw;
};

function int(min: number, max: number, fallback: number, help: string): Setting<number> {
  return { check: check.integer(min, max), fallback: () => fallback, fromString: asInt, help };
}

function bool(fallback: boolean, help: string): Setting<boolean> {
  return { check: check.boolean, fallback: () => fallback, fromString: asBool, help };
}

function text<T extends string>(valid: check.Check<T>, fallback: () => T, help: string): Setting<T> {
  return { check: valid, fallback, fromString: (raw) => raw, help };
}

const HOST_PORT = '[A-Za-z0-9.\\-]+:\\d{1,5}|\\[[0-9A-Fa-f:.]+\\]:\\d{1,5}';
const PEER_LIST = new RegExp(`^$|^(${HOST_PORT})(,(${HOST_PORT}))*$`);
const DNS_PEERS = /^$|^[A-Za-z0-9.-]+:\d{1,5}$/;

const CLIENT_AUTH = ['require', 'optional', 'none'] as const;
/** Whether a TLS port asks for client certificates and whether it requires them. */
export type ClientAuthMode = (typeof CLIENT_AUTH)[number];

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** A pino level name, or `silent`. */
export type LogLevel = (typeof LOG_LEVELS)[number];

const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
/** `auto`: human-readable on a terminal, JSON lines otherwise (log collectors, pipes). */
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * Every server setting, one line each: adding one here adds its `--kebab-flag`, its
 * `ROSTER_UPPER_SNAKE` env var and its config-file key. Names are stable (deployments use them).
 */
const SETTINGS = {
  host: text(check.text({ min: 1 }), () => '127.0.0.1', 'address to bind (0.0.0.0 to serve other hosts, e.g. in Kubernetes)'),
  port: int(0, 65535, 8761, 'gRPC port (0 picks a free port)'),
  httpPort: int(0, 65535, 8762, 'HTTP port for /metrics, /healthz, /readyz (0 picks a free port)'),
  logLevel: text<LogLevel>(check.oneOf(LOG_LEVELS), () => 'info', `log level: ${LOG_LEVELS.join(', ')}`),
  logFormat: text<LogFormat>(check.oneOf(LOG_FORMATS), () => 'auto', 'log format: auto (pretty on a terminal, JSON otherwise), json, pretty'),
  nodeId: text(check.text({ format: /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, says: 'must be 1..128 of [A-Za-z0-9._:-]' }), defaultNodeId, "this node's id (default: hostname plus a random suffix)"),
  leaseRenewalSecs: int(1, 300, 30, 'renewal interval for instances that do not set one'),
  leaseDurationSecs: int(1, 3600, 90, 'lease duration for instances that do not set one'),
  selfPreservation: bool(true, 'stop evicting when renewals fall below the threshold'),
  renewalThresholdPercent: int(1, 100, 85, 'self-preservation threshold, % of expected renewals'),
  selfPreservationMinLapsed: int(1, 10_000_000, 10, 'self-preservation also needs at least this many lapsed instances'),
  maxClockSkewSecs: int(1, 315_360_000, 86_400, "how far ahead of this node's clock a client last_dirty_timestamp may be"),
  evictionIntervalMs: int(100, 600_000, 1000, 'how often expired leases are looked for'),
  changeLogSize: int(1, 10_000_000, 100_000, 'changes kept for GetDelta and Watch resumption'),
  peerHoldSecs: int(0, 3600, 120, 'expired leases last renewed through a peer this node cannot hear from are kept this long'),
  maxInstances: int(1, 100_000_000, 1_000_000, 'client registrations of new instances beyond this many are refused (RESOURCE_EXHAUSTED)'),
  maxInstancesPerApp: int(1, 100_000_000, 100_000, 'the same, per application'),
  maxMetadataBytes: int(1, 2 ** 40, 256 * 1024 * 1024, 'metadata of all instances together, in characters (RESOURCE_EXHAUSTED beyond)'),
  writesPerSecond: int(1, 10_000_000, 50_000, 'client write rate limit (RESOURCE_EXHAUSTED beyond)'),
  writeBurst: int(1, 10_000_000, 20_000, 'client write burst allowance'),
  maxWatchers: int(0, 1_000_000, 10_000, 'concurrent Watch streams allowed'),
  fullReadCacheMib: int(0, 65_536, 64, 'ListApplications chunks of the current revision kept for later reads, plain and gzip, in MiB (0: encode every read)'),
  eurekaPlainCacheMib: int(0, 65_536, 128, 'largest plain (not gzip) GET /eureka/apps body kept for the current revision, in MiB; larger ones are inflated from the gzip body as they are written'),
  shutdownGraceMs: int(0, 600_000, 5000, 'how long shutdown waits for calls and streams to finish'),
  peers: text(check.text({ format: PEER_LIST, says: 'must be host:port[,host:port...]' }), () => '', 'static peers, host:port,host:port (this node is skipped)'),
  peersDns: text(check.text({ format: DNS_PEERS, says: 'must be name:port' }), () => '', 'peers from a DNS name, name:port (e.g. a Kubernetes headless service)'),
  peerRefreshSecs: int(1, 3600, 30, 'how often peers are resolved again'),
  clusterToken: { ...text(check.text({ max: 1024 }), () => '', 'credential peers must present to replicate (empty: any peer; logged as a warning)'), secret: true },
  antiEntropySecs: int(1, 3600, 30, 'how often digests are compared with each peer'),
  startupWaitSecs: int(0, 3600, 300, 'how long reads answer UNAVAILABLE while no peer snapshot has been applied'),
  replicationQueueSize: int(1, 10_000_000, 10_000, 'pending replication tasks per peer (oldest dropped beyond)'),
  replicationTasksPerSecond: int(1, 10_000_000, 200_000, 'replicated tasks accepted per second (RESOURCE_EXHAUSTED beyond)'),
  clusterTokenFile: text(check.text(), () => '', 'file holding the cluster token (a flag shows in the process list; a file does not)'),
  credentialsFile: text(check.text(), () => '', 'JSON file of principals (token or certificate name, roles, apps); set: every call needs a credential'),
  tlsCertFile: text(check.text(), () => '', 'PEM certificate of this node (gRPC and HTTP ports, and to peers); set: TLS'),
  tlsKeyFile: text(check.text(), () => '', 'PEM private key of tlsCertFile'),
  tlsCaFile: text(check.text(), () => '', 'PEM CA bundle verifying client certificates (mTLS) and peers'),
  tlsClientAuth: text<ClientAuthMode>(check.oneOf(CLIENT_AUTH), () => 'require', 'with tlsCaFile, gRPC client certificates: require (mTLS), optional or none'),
  httpTls: bool(true, 'serve the HTTP port over TLS too when tlsCertFile is set'),
  httpTlsClientAuth: text<ClientAuthMode>(check.oneOf(CLIENT_AUTH), () => 'optional', 'with tlsCaFile, HTTP client certificates: require, optional (probes need none) or none'),
  peerTlsServerName: text(check.text(), () => '', "name peers' certificates must carry when it is not the dialled host"),
  tlsReloadSecs: int(1, 3600, 30, 'how often certificate, key, CA and credentials files are checked for changes'),
  insecure: bool(false, 'allow a node with peers to run without a cluster credential (token or mTLS)'),
  httpHost: text(check.text(), () => '', 'address the HTTP port binds (default: host); e.g. 127.0.0.1 to keep it private'),
  maxConnections: int(1, 1_000_000, 10_000, 'open gRPC connections in total (more are closed at accept)'),
  maxConnectionsPerAddress: int(1, 1_000_000, 1_000, 'open gRPC connections from one client address'),
  maxCalls: int(1, 10_000_000, 20_000, 'concurrent gRPC calls and streams in total (RESOURCE_EXHAUSTED beyond)'),
  maxCallsPerConnection: int(1, 1_000_000, 1_000, 'concurrent gRPC calls and streams on one connection'),
  idleConnectionSecs: int(0, 86_400, 300, 'close a gRPC connection that carried no call for this long (0: never)'),
  httpMaxHeaderBytes: int(1024, 1_048_576, 16_384, 'largest request head the HTTP port reads (431 beyond)'),
  httpMaxBodyBytes: int(1024, 64 * 1_048_576, 1_048_576, 'largest request body the HTTP port accepts (413 beyond)'),
} satisfies Record<string, Setting<unknown>>;

type Settings = typeof SETTINGS;
/** The name of a setting, as used in the config file. */
export type SettingName = keyof Settings;

/** The validated server configuration. */
export type Config = { [K in SettingName]: Settings[K] extends Setting<infer T> ? T : never };

/** A configuration problem; the message names the setting and where its value came from. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Raw values by source; flags use camelCase setting names (as commander reports them). */
export interface ConfigSources {
  readonly file?: { readonly path: string; readonly data: unknown };
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly flags?: Readonly<Record<string, unknown>>;
}

const NAMES = Object.keys(SETTINGS) as SettingName[];

/** `httpPort` → `ROSTER_HTTP_PORT`. */
export function envVarOf(name: SettingName): string {
  return `ROSTER_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** `httpPort` → `http-port`. */
export function flagOf(name: SettingName): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/**
 * The settings with their flag, env var, help and default as shown in `--help` (`fallback` is
 * undefined where the default is computed, e.g. the node id, and the help says how).
 */
export function describeSettings(): { name: SettingName; flag: string; envVar: string; help: string; boolean: boolean; fallback: string | undefined }[] {
  return NAMES.map((name) => {
    const value: unknown = name === 'nodeId' ? undefined : SETTINGS[name].fallback();
    const fallback = value === undefined ? undefined : value === '' ? 'none' : String(value);
    return { name, flag: flagOf(name), envVar: envVarOf(name), help: SETTINGS[name].help, boolean: SETTINGS[name].fromString === asBool, fallback };
  });
}

/**
 * Merges defaults < file < ROSTER_* env < flags and validates every setting, reporting all
 * problems at once. Unknown keys in the file are errors (a typo must not silently fall back).
 */
export function resolveConfig(sources: ConfigSources): Config {
  const problems: string[] = [];
  const fileValues = fileObject(sources.file, problems);
  const result: Record<string, unknown> = {};
  for (const name of NAMES) {
    const setting: Setting<unknown> = SETTINGS[name];
    const envVar = envVarOf(name);
    const flag = sources.flags?.[name];
    const env = sources.env?.[envVar];
    let raw: unknown;
    let origin: string;
    if (flag !== undefined) {
      raw = typeof flag === 'string' ? setting.fromString(flag) : flag;
      origin = `flag --${flagOf(name)}`;
    } else if (env !== undefined && env !== '') {
      raw = setting.fromString(env);
      origin = `env ${envVar}`;
    } else if (fileValues !== undefined && Object.hasOwn(fileValues, name)) {
      raw = fileValues[name];
      origin = `file ${sources.file?.path}`;
    } else {
      result[name] = setting.fallback();
      continue;
    }
    const checked = check.verdict(setting.check, raw);
    if (checked.ok) result[name] = checked.value;
    else {
      const shown = setting.secret ? `<secret of ${String(raw).length} characters>` : JSON.stringify(raw);
      problems.push(`${name}=${shown} (from ${origin}): ${checked.problem}`);
    }
  }
  if (problems.length === 0 && (result.leaseDurationSecs as number) < (result.leaseRenewalSecs as number)) {
    problems.push(`leaseDurationSecs (${result.leaseDurationSecs}) must be at least leaseRenewalSecs (${result.leaseRenewalSecs})`);
  }
  if (problems.length === 0) problems.push(...securityProblems(result as Config));
  if (problems.length > 0) throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  return result as Config;
}

/** Reads `--config` (a JSON file) when given and resolves the whole configuration. */
export function loadConfig(flags: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv = process.env): Config {
  const path = flags.config;
  if (path === undefined) return resolveConfig({ env, flags });
  if (typeof path !== 'string') throw new ConfigError('--config needs a file path');
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  return resolveConfig({ file: { path, data }, env, flags });
}

/** Settings that only make sense together, and the refusal to replicate without a cluster credential. */
function securityProblems(c: Config): string[] {
  const problems: string[] = [];
  if ((c.tlsCertFile === '') !== (c.tlsKeyFile === '')) problems.push('tlsCertFile and tlsKeyFile go together: set both or neither');
  if (c.tlsCaFile !== '' && c.tlsCertFile === '') problems.push('tlsCaFile needs tlsCertFile and tlsKeyFile');
  if (c.clusterToken !== '' && c.clusterTokenFile !== '') problems.push('set clusterToken or clusterTokenFile, not both');
  const hasPeers = c.peers !== '' || c.peersDns !== '';
  const mtls = c.tlsCaFile !== '' && c.tlsClientAuth === 'require';
  if (hasPeers && c.clusterToken === '' && c.clusterTokenFile === '' && !mtls && !c.insecure) {
    problems.push('a node with peers needs a cluster credential: clusterTokenFile (or clusterToken / ROSTER_CLUSTER_TOKEN), or mTLS (tlsCertFile, tlsKeyFile, tlsCaFile); --insecure runs without one');
  }
  return problems;
}

function fileObject(file: ConfigSources['file'], problems: string[]): Record<string, unknown> | undefined {
  if (file === undefined) return undefined;
  const { data, path } = file;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    problems.push(`config file ${path} must hold a JSON object`);
    return undefined;
  }
  for (const key of Object.keys(data)) {
    if (!(NAMES as string[]).includes(key)) problems.push(`config file ${path}: unknown setting "${key}"`);
  }
  return data as Record<string, unknown>;
}

function defaultNodeId(): string {
  const host = hostname()
    .replace(/[^A-Za-z0-9._:-]/g, '-')
    .slice(0, 100);
  return `${/^[A-Za-z0-9]/.test(host) ? host : `roster${host}`}-${randomBytes(3).toString('hex')}`;
}
