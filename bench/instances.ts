import type { DeepPartial, Instance } from '../src/gen/roster/v1/instance.js';

/** Apps the generated instances are spread over: 100k instances make 200 per app. */
const APPS = 500;

/** The identity of the `i`-th benchmark instance (what a heartbeat names). */
export function benchKey(i: number, prefix = 'bench'): { app: string; instanceId: string; host: string } {
  const host = `${prefix}-${i}.hosts.internal`;
  return { app: `${prefix}-app-${i % APPS}`, instanceId: `${host}:8080`, host };
}

/**
 * The `i`-th benchmark instance, shaped like a typical microservice registration: ports, VIPs,
 * zone, three URLs and a few metadata entries (about 400 bytes on the wire). Leases last the
 * maximum hour so that nothing expires while a benchmark runs.
 */
export function benchInstance(i: number, prefix = 'bench'): DeepPartial<Instance> {
  const { app, instanceId, host } = benchKey(i, prefix);
  return {
    app,
    instanceId,
    hostName: host,
    ipAddr: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    port: { number: 8080, enabled: true },
    securePort: { number: 8443, enabled: false },
    vipAddress: `${app}.vip`,
    secureVipAddress: `${app}.secure.vip`,
    zone: `zone-${i % 3}`,
    region: 'region-1',
    metadata: { version: '1.4.2', build: String(1000 + (i % 97)), team: `team-${i % 20}` },
    homePageUrl: `http://${host}:8080/`,
    statusPageUrl: `http://${host}:8080/status`,
    healthCheckUrl: `http://${host}:8080/healthz`,
    lease: { renewalIntervalSecs: 30, durationSecs: 3600 },
  };
}
