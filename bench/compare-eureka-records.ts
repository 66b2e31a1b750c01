/**
 * The records `npm run bench -- --compare eureka` registers on both servers: the same instance
 * as a Spring Cloud Eureka client sends it (JSON, for Eureka and Roster's Eureka face) and as
 * a gRPC client sends it (protobuf, for Roster's Register). About 1.15 KB of JSON each once a
 * server writes it back, like a real Spring Boot registration.
 */
import { createHash } from 'node:crypto';
import type { DeepPartial, Instance } from '../src/gen/roster/v1/instance.js';

/** Apps the records are spread over: 10k instances make 20 per app, 100k make 200. */
const APPS = 500;
/** Long leases: nothing the benchmark registers expires while it runs (Roster's maximum). */
const LEASE = { renewalIntervalInSecs: 30, durationInSecs: 3600 };

/** Where the `i`-th record lives: its app (upper case, as Eureka paths carry it) and id. */
export interface RecordKey {
  readonly app: string;
  readonly instanceId: string;
  readonly host: string;
}

export function recordKey(i: number, prefix: string): RecordKey {
  const app = `${prefix}-app-${i % APPS}`.toUpperCase();
  const host = `${prefix}-${i}.hosts.internal`;
  return { app, instanceId: `${host}:${app.toLowerCase()}:8080`, host };
}

/** Lease settings a record carries; the crash scenario sets short ones. */
export interface Lease {
  readonly renewalIntervalInSecs: number;
  readonly durationInSecs: number;
}

/**
 * The `i`-th record as Eureka's `POST apps/APP` body. `lastDirtyTimestamp` makes each register a
 * real change; `marker` (metadata) lets a reader find this exact write in a body.
 */
export function eurekaBody(i: number, prefix: string, lastDirtyTimestamp: number, marker = '', lease: Lease = LEASE): string {
  const { app, instanceId, host } = recordKey(i, prefix);
  const base = `http://${host}:8080`;
  return JSON.stringify({
    instance: {
      instanceId,
      hostName: host,
      app,
      ipAddr: ipOf(i),
      status: 'UP',
      overriddenStatus: 'UNKNOWN',
      port: { $: 8080, '@enabled': 'true' },
      securePort: { $: 443, '@enabled': 'false' },
      countryId: 1,
      dataCenterInfo: { '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo', name: 'MyOwn' },
      leaseInfo: lease,
      metadata: metadata(i, marker),
      homePageUrl: `${base}/`,
      statusPageUrl: `${base}/actuator/info`,
      healthCheckUrl: `${base}/actuator/health`,
      vipAddress: app.toLowerCase(),
      secureVipAddress: app.toLowerCase(),
      isCoordinatingDiscoveryServer: 'false',
      lastUpdatedTimestamp: String(lastDirtyTimestamp),
      lastDirtyTimestamp: String(lastDirtyTimestamp),
    },
  });
}

/** The same record as Roster's gRPC `Register` takes it. */
export function grpcInstance(i: number, prefix: string, lastDirtyTimestamp: number): DeepPartial<Instance> {
  const { app, instanceId, host } = recordKey(i, prefix);
  const base = `http://${host}:8080`;
  return {
    app,
    instanceId,
    hostName: host,
    ipAddr: ipOf(i),
    port: { number: 8080, enabled: true },
    securePort: { number: 443, enabled: false },
    vipAddress: app.toLowerCase(),
    secureVipAddress: app.toLowerCase(),
    metadata: metadata(i, ''),
    homePageUrl: `${base}/`,
    statusPageUrl: `${base}/actuator/info`,
    healthCheckUrl: `${base}/actuator/health`,
    lease: { renewalIntervalSecs: LEASE.renewalIntervalInSecs, durationSecs: LEASE.durationInSecs },
    lastDirtyTimestamp,
  };
}

/** Builds in service: instances of one build share its commit, as in a real fleet. */
const COMMITS = Array.from({ length: 50 }, (_, b) => createHash('sha1').update(`build-${b}`).digest('hex'));

function ipOf(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

/** What Spring Boot apps commonly carry: management port, zone, version and build, owner. */
function metadata(i: number, marker: string): Record<string, string> {
  return {
    'management.port': '8080',
    zone: `zone-${i % 3}`,
    version: `1.${i % 7}.${i % 13}`,
    'git.commit': COMMITS[i % COMMITS.length]!,
    team: `team-${i % 20}`,
    ...(marker === '' ? {} : { marker }),
  };
}
