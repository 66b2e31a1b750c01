import { readFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import * as check from '../security/checks.js';
import { parseProbe, parseStatusRange, type Probe } from './probes.js';

/**
 * `roster agent` settings. Agent-wide ones and the settings of one application; a JSON file
 * (`--config`) may list several applications under `apps`. Each setting has a `--kebab-flag`
 * and a `ROSTER_AGENT_UPPER_SNAKE` variable (the server list keeps the client commands'
 * `ROSTER_SERVER`), so deployments can use either; names are stable.
 */
const HOST_PORT = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/;
const SERVER_LIST = check.text({ format: (s) => s.split(',').every((a) => HOST_PORT.test(a.trim())), says: 'must be host:port[,host:port...]' });
/** Flags and env give numbers as strings; a file may give either. */
const int = (min: number, max: number): check.Check<number> => {
  const inRange = check.integer(min, max);
  return (value) => inRange(typeof value === 'string' && value.trim() !== '' ? Number(value) : value);
};
/** A string `parse` accepts; refused with parse's own message. */
const parsable =
  (parse: (spec: string) => unknown): check.Check<string> =>
  (value) => {
    const spec = check.text()(value);
    try {
      parse(spec);
    } catch (err) {
      throw new check.Refused((err as Error).message);
    }
    return spec;
  };

interface SettingDef {
  readonly check: check.Check<unknown>;
  readonly help: string;
  /** Overrides the ROSTER_AGENT_ prefix rule. */
  readonly envVar?: string;
  readonly fallback?: () => unknown;
}

/** Agent-wide settings. */
const AGENT_SETTINGS = {
  server: { check: SERVER_LIST, help: 'Roster servers, host:port[,host:port...] (failover in order)', envVar: 'ROSTER_SERVER', fallback: () => '127.0.0.1:8761' },
  serverDns: {
    check: check.text({ format: /^$|^[A-Za-z0-9.-]+:\d{1,5}$/, says: 'must be name:port' }),
    help: 'a DNS name:port whose addresses are Roster servers too, tried after --server (e.g. the headless Service)',
    envVar: 'ROSTER_SERVER_DNS',
    fallback: () => '',
  },
  httpHost: { check: check.text({ min: 1 }), help: "address of the agent's /healthz and /readyz (0.0.0.0 for kubelet probes)", fallback: () => '127.0.0.1' },
  httpPort: { check: int(0, 65535), help: "port of the agent's /healthz and /readyz (0 picks a free port)", fallback: () => 8763 },
  drainSecs: { check: int(0, 3600), help: 'on SIGTERM, seconds between OUT_OF_SERVICE and cancel, for in-flight traffic to finish', fallback: () => 10 },
  logLevel: { check: check.oneOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']), help: 'log level', envVar: 'ROSTER_LOG_LEVEL', fallback: () => 'info' },
} satisfies Record<string, SettingDef>;

/** The settings of one application (flags and env describe one; the file's `apps` any number). */
const APP_SETTINGS = {
  app: { check: check.text({ min: 1, max: 128 }), help: 'application name (required)' },
  instanceId: { check: check.text({ min: 1, max: 256 }), help: 'instance id (default HOST-NAME:APP:PORT)' },
  hostName: { check: check.text({ min: 1 }), help: "host name to register (default: this host's name)" },
  ip: { check: check.text({ min: 1 }), help: 'IP address to register (default: the first non-loopback IPv4; in Kubernetes the pod IP)' },
  port: { check: int(0, 65535), help: "the application's plain port (0: none)", fallback: () => 0 },
  securePort: { check: int(0, 65535), help: "the application's TLS port (0: none)", fallback: () => 0 },
  vip: { check: check.text(), help: 'VIP address(es), comma-separated', fallback: () => '' },
  secureVip: { check: check.text(), help: 'secure VIP address(es), comma-separated', fallback: () => '' },
  zone: { check: check.text(), help: 'availability zone', fallback: () => '' },
  region: { check: check.text(), help: 'region', fallback: () => '' },
  metadata: { check: check.text({ format: /^$|^[^=,]+=[^,]*(,[^=,]+=[^,]*)*$/, says: 'must be key=value[,key=value...]' }), help: 'metadata, key=value[,key=value...]', fallback: () => '' },
  renewSecs: { check: int(1, 300), help: 'heartbeat interval (renewal) in seconds', fallback: () => 30 },
  durationSecs: { check: int(1, 3600), help: 'lease duration in seconds', fallback: () => 90 },
  probe: { check: parsable(parseProbe), help: 'health probe: http(s)://host:port/path, grpc://host:port[/service], tcp://host:port, exec:command, none', fallback: () => 'none' },
  probeStatus: { check: parsable(parseStatusRange), help: 'HTTP statuses that count as healthy, NNN or NNN-NNN', fallback: () => '200-399' },
  probeIntervalMs: { check: int(100, 3_600_000), help: 'time between probes', fallback: () => 10_000 },
  probeTimeoutMs: { check: int(10, 600_000), help: 'time a probe may take before it counts as failed', fallback: () => 1_000 },
  failureThreshold: { check: int(1, 1000), help: 'consecutive failed probes that mark the instance DOWN', fallback: () => 3 },
  successThreshold: { check: int(1, 1000), help: 'consecutive good probes that mark it UP again', fallback: () => 1 },
} satisfies Record<string, SettingDef>;

type AgentKey = keyof typeof AGENT_SETTINGS;
type AppKey = keyof typeof APP_SETTINGS;

/** One application the agent keeps registered and probes. */
export interface AppConfig {
  readonly app: string;
  readonly instanceId: string;
  readonly hostName: string;
  readonly ip: string;
  readonly port: number;
  readonly securePort: number;
  readonly vip: string;
  readonly secureVip: string;
  readonly zone: string;
  readonly region: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly renewSecs: number;
  readonly durationSecs: number;
  readonly probe: Probe;
  readonly probeIntervalMs: number;
  readonly probeTimeoutMs: number;
  readonly failureThreshold: number;
  readonly successThreshold: number;
}

/** The validated agent configuration. */
export interface AgentConfig {
  readonly servers: readonly string[];
  readonly serverDns: string;
  readonly httpHost: string;
  readonly httpPort: number;
  readonly drainSecs: number;
  readonly logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  readonly apps: readonly AppConfig[];
}

/** A configuration problem; the message names every bad setting and where it came from. */
export class AgentConfigError extends Error {}

const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const snake = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
const envOf = (name: string, def: SettingDef): string => def.envVar ?? `ROSTER_AGENT_${snake(name)}`;

/** Every agent setting: file key, flag, env var, help (for the CLI, the docs and the manifest test). */
export function describeAgentSettings(): { name: string; flag: string; envVar: string; help: string; perApp: boolean }[] {
  const rows = (defs: Record<string, SettingDef>, perApp: boolean) =>
    Object.entries(defs).map(([name, def]) => {
      const fallback = def.fallback?.();
      const help = fallback === undefined || fallback === '' ? def.help : `${def.help} (default ${String(fallback)})`;
      return { name, flag: kebab(name), envVar: envOf(name, def), help, perApp };
    });
  return [...rows(AGENT_SETTINGS, false), ...rows(APP_SETTINGS, true)];
}

/**
 * Builds the configuration: defaults < JSON file (`configPath`) < env < flags. Flags and env
 * describe one application (when `app` is set there); the file's `apps` adds more. Every
 * problem is reported at once.
 */
export function loadAgentConfig(flags: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const problems: string[] = [];
  let file: Record<string, unknown> = {};
  const configPath = typeof flags.config === 'string' ? flags.config : env.ROSTER_AGENT_CONFIG;
  if (configPath) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(configPath, 'utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('must be a JSON object');
      file = parsed as Record<string, unknown>;
    } catch (err) {
      throw new AgentConfigError(`invalid agent configuration: ${configPath}: ${(err as Error).message}`);
    }
  }
  for (const k of Object.keys(file)) {
    if (k !== 'apps' && !(k in AGENT_SETTINGS)) problems.push(`unknown key "${k}" in ${configPath}`);
  }

  /** Reads `name` from flags, then env, then `fileValues`, then the default. */
  const pick = (name: string, def: SettingDef, fileValues: Record<string, unknown>, fileLabel: string, useCli: boolean): unknown => {
    const sources: [unknown, string][] = [];
    if (useCli) sources.push([flags[name], `flag --${kebab(name)}`], [env[envOf(name, def)] || undefined, `env ${envOf(name, def)}`]);
    sources.push([fileValues[name], fileLabel]);
    for (const [value, from] of sources) {
      if (value === undefined) continue;
      const checked = check.verdict(def.check, value);
      if (checked.ok) return checked.value;
      problems.push(`${name}=${JSON.stringify(value)} (from ${from}): ${checked.problem}`);
      return undefined;
    }
    return def.fallback?.();
  };

  const agent = Object.fromEntries(Object.entries(AGENT_SETTINGS).map(([name, def]) => [name, pick(name, def, file, `${configPath} key ${name}`, true)])) as Record<AgentKey, unknown>;

  const appSources: { values: Record<string, unknown>; label: string; useCli: boolean }[] = [];
  const fileApps = file.apps;
  if (fileApps !== undefined) {
    if (!Array.isArray(fileApps)) problems.push(`apps (from ${configPath}) must be an array`);
    else {
      fileApps.forEach((entry: unknown, i) => {
        if (typeof entry !== 'object' || entry === null) {
          problems.push(`apps[${i}] (from ${configPath}) must be an object`);
          return;
        }
        for (const k of Object.keys(entry)) if (!(k in APP_SETTINGS)) problems.push(`unknown key "apps[${i}].${k}" in ${configPath}`);
        appSources.push({ values: entry as Record<string, unknown>, label: `${configPath} apps[${i}]`, useCli: false });
      });
    }
  }
  if (flags.app !== undefined || env.ROSTER_AGENT_APP) appSources.push({ values: {}, label: '', useCli: true });
  if (appSources.length === 0) problems.push('no application: set --app (ROSTER_AGENT_APP) or list apps in a --config file');

  const apps: AppConfig[] = [];
  for (const source of appSources) {
    const v = Object.fromEntries(Object.entries(APP_SETTINGS).map(([name, def]) => [name, pick(name, def, source.values, source.label, source.useCli)])) as Record<AppKey, unknown>;
    if (typeof v.app !== 'string') {
      if (!problems.some((p) => p.startsWith('app='))) problems.push(`app is required (${source.label || 'flags/env'})`);
      continue;
    }
    const host = (v.hostName as string | undefined) ?? hostname();
    const port = v.port as number;
    apps.push({
      app: v.app,
      instanceId: (v.instanceId as string | undefined) ?? `${host}:${v.app}:${port}`,
      hostName: host,
      ip: (v.ip as string | undefined) ?? defaultIp(),
      port,
      securePort: v.securePort as number,
      vip: v.vip as string,
      secureVip: v.secureVip as string,
      zone: v.zone as string,
      region: v.region as string,
      metadata: parseMetadata(v.metadata as string),
      renewSecs: v.renewSecs as number,
      durationSecs: v.durationSecs as number,
      probe: problems.length === 0 ? parseProbe(v.probe as string, v.probeStatus as string) : { kind: 'none' },
      probeIntervalMs: v.probeIntervalMs as number,
      probeTimeoutMs: v.probeTimeoutMs as number,
      failureThreshold: v.failureThreshold as number,
      successThreshold: v.successThreshold as number,
    });
  }
  const ids = apps.map((a) => `${a.app.toLowerCase()}/${a.instanceId}`);
  for (const dup of new Set(ids.filter((id, i) => ids.indexOf(id) !== i))) problems.push(`instance ${dup} is listed twice`);
  if (problems.length > 0) throw new AgentConfigError(`invalid agent configuration: ${problems.join('; ')}`);
  return {
    servers: (agent.server as string)
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
    serverDns: agent.serverDns as string,
    httpHost: agent.httpHost as string,
    httpPort: agent.httpPort as number,
    drainSecs: agent.drainSecs as number,
    logLevel: agent.logLevel as AgentConfig['logLevel'],
    apps,
  };
}

function parseMetadata(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of text.split(',').filter((e) => e !== '')) {
    const eq = entry.indexOf('=');
    out[entry.slice(0, eq).trim()] = entry.slice(eq + 1);
  }
  return out;
}

/** The first non-internal IPv4 address (what peers on the network can reach), else loopback. */
function defaultIp(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}
