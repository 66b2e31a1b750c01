import { isIP } from 'node:net';
import type { JsonValue } from '@bufbuild/protobuf';
import { checkApp } from '../core/validate.js';
import type { InstanceRecord } from '../core/types.js';

/**
 * The xDS resources a proxyless gRPC client follows for `xds:///NAME`, as proto3 JSON:
 * Listener NAME → RouteConfiguration NAME → Cluster KEY → ClusterLoadAssignment KEY, where
 * KEY is NAME without a `:port` suffix, in lower case (an application name or a VIP).
 * Every valid name exists: one without instances ends in an empty ClusterLoadAssignment, so
 * clients fail fast instead of waiting for a does-not-exist timer, and start calling as soon as
 * an instance appears.
 */

/**
 * Metadata key an instance sets to weigh itself (an integer 1..{@link MAX_ENDPOINT_WEIGHT};
 * anything else counts as 1). Localities weigh the sum of their endpoints' weights, so a
 * ROUND_ROBIN client spreads calls over zones in proportion to their capacity.
 */
export const WEIGHT_METADATA_KEY = 'xds.weight';
export const MAX_ENDPOINT_WEIGHT = 10_000;

const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const ADS_SOURCE = { ads: {}, resourceApiVersion: 'V3' };
const PORT_SUFFIX = /:\d{1,5}$/;

/**
 * The application or VIP a resource name stands for, or undefined when the name cannot be one
 * (such a resource does not exist and is never sent).
 */
export function targetKey(name: string): string | undefined {
  try {
    return checkApp(name.replace(PORT_SUFFIX, ''));
  } catch {
    return undefined;
  }
}

export function listenerJson(name: string): JsonValue {
  return {
    name,
    apiListener: {
      apiListener: {
        '@type': HCM_TYPE,
        rds: { routeConfigName: name, configSource: ADS_SOURCE },
        // Python and Go refuse a listener without a terminal router filter.
        httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: { '@type': ROUTER_TYPE } }],
      },
    },
  };
}

export function routeJson(name: string, key: string): JsonValue {
  return {
    name,
    virtualHosts: [{ name: key, domains: ['*'], routes: [{ match: { prefix: '' }, route: { cluster: key } }] }],
  };
}

export function clusterJson(name: string, key: string): JsonValue {
  return {
    name,
    type: 'EDS',
    lbPolicy: 'ROUND_ROBIN',
    edsClusterConfig: { edsConfig: ADS_SOURCE, serviceName: key },
  };
}

/** An instance a client may call: UP, an IP literal, and an enabled (plain) port. */
export function isRoutable(record: InstanceRecord): boolean {
  return record.status === 'UP' && isIP(record.ipAddr) !== 0 && record.port.enabled && record.port.number > 0;
}

export function endpointWeight(record: InstanceRecord): number {
  const raw = record.metadata[WEIGHT_METADATA_KEY];
  if (raw === undefined || !/^\d{1,5}$/.test(raw)) return 1;
  const weight = Number(raw);
  return weight >= 1 && weight <= MAX_ENDPOINT_WEIGHT ? weight : 1;
}

/**
 * The endpoints of `instances` that are routable, grouped by (region, zone), all at priority
 * 0. Sorted, so the same set encodes to the same bytes (and version) on every node.
 */
export function loadAssignmentJson(name: string, instances: readonly InstanceRecord[]): JsonValue {
  const localities = new Map<string, { region: string; zone: string; weight: number; endpoints: InstanceRecord[] }>();
  for (const record of instances) {
    if (!isRoutable(record)) continue;
    const id = `${record.region}\n${record.zone}`;
    let locality = localities.get(id);
    if (!locality) localities.set(id, (locality = { region: record.region, zone: record.zone, weight: 0, endpoints: [] }));
    locality.weight += endpointWeight(record);
    locality.endpoints.push(record);
  }
  const endpoints = [...localities.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, l]) => ({
      locality: { region: l.region, zone: l.zone },
      loadBalancingWeight: l.weight,
      priority: 0,
      lbEndpoints: l.endpoints.sort(byAddress).map((r) => ({
        endpoint: { address: { socketAddress: { address: r.ipAddr, portValue: r.port.number } } },
        healthStatus: 'HEALTHY',
        loadBalancingWeight: endpointWeight(r),
      })),
    }));
  return { clusterName: name, endpoints };
}

function byAddress(a: InstanceRecord, b: InstanceRecord): number {
  const ka = `${a.ipAddr}:${a.port.number}:${a.app}/${a.instanceId}`;
  const kb = `${b.ipAddr}:${b.port.number}:${b.app}/${b.instanceId}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
