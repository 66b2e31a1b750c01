import { readFileSync } from 'node:fs';
import { createFileRegistry, fromBinary, fromJson, toBinary, toJson, type DescMessage, type JsonValue, type Registry } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';

// With the messages, for clients that build requests (bench/xds.ts).
export { AGGREGATED_DISCOVERY_SERVICE } from './definition.js';

/**
 * The xDS messages, from the vendored Envoy protos (third_party/xds-api) compiled into
 * src/gen/xds.binpb by `npm run generate` — the same descriptor set server reflection serves.
 * They are encoded by reflection (@bufbuild/protobuf) rather than generated code: Roster
 * touches a dozen of the 65 files' messages, and ts-proto output for the whole closure would
 * be tens of thousands of lines to type-check. Resources are built as proto3 JSON (the form
 * Envoy's documentation uses), checked and encoded once per change, and shared by streams.
 */

export const TYPE_URL = {
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
} as const;

export type ResourceKind = keyof typeof TYPE_URL;
export const RESOURCE_KINDS: readonly ResourceKind[] = ['listener', 'route', 'cluster', 'endpoint'];

/** Short label for metrics and logs: lds, rds, cds, eds. */
export const KIND_LABEL: Readonly<Record<ResourceKind, string>> = { listener: 'lds', route: 'rds', cluster: 'cds', endpoint: 'eds' };

export function kindOfTypeUrl(typeUrl: string): ResourceKind | undefined {
  for (const kind of RESOURCE_KINDS) if (TYPE_URL[kind] === typeUrl) return kind;
  return undefined;
}

interface Schema {
  readonly registry: Registry;
  readonly resources: Readonly<Record<ResourceKind, DescMessage>>;
  readonly request: DescMessage;
  readonly response: DescMessage;
}

let loaded: Schema | undefined;

/** Built on first use (~0.2 s of CPU), so a node no xDS client talks to starts no slower. */
function schema(): Schema {
  if (loaded) return loaded;
  const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(new URL('../gen/xds.binpb', import.meta.url))));
  const message = (typeName: string): DescMessage => {
    const desc = registry.getMessage(typeName);
    if (!desc) throw new Error(`${typeName} is missing from src/gen/xds.binpb (run npm run generate)`);
    return desc;
  };
  loaded = {
    registry,
    resources: {
      listener: message('envoy.config.listener.v3.Listener'),
      route: message('envoy.config.route.v3.RouteConfiguration'),
      cluster: message('envoy.config.cluster.v3.Cluster'),
      endpoint: message('envoy.config.endpoint.v3.ClusterLoadAssignment'),
    },
    request: message('envoy.service.discovery.v3.DiscoveryRequest'),
    response: message('envoy.service.discovery.v3.DiscoveryResponse'),
  };
  return loaded;
}

/** Encodes a resource given in proto3 JSON; throws if the JSON does not fit the message. */
export function encodeResource(kind: ResourceKind, json: JsonValue): Uint8Array {
  const { registry, resources } = schema();
  return toBinary(resources[kind], fromJson(resources[kind], json, { registry }));
}

/** The fields of a DiscoveryRequest the server reads. */
export interface DiscoveryRequest {
  readonly versionInfo: string;
  readonly node: { readonly id: string; readonly cluster: string; readonly locality?: { readonly zone: string } } | undefined;
  readonly resourceNames: readonly string[];
  readonly typeUrl: string;
  readonly responseNonce: string;
  readonly errorDetail: { readonly code: number; readonly message: string } | undefined;
}

export function decodeDiscoveryRequest(bytes: Uint8Array): DiscoveryRequest {
  // The reflective message has exactly these (camelCase) fields; the cast narrows it.
  return fromBinary(schema().request, bytes) as unknown as DiscoveryRequest;
}

export function encodeDiscoveryRequest(json: JsonValue): Buffer {
  const { registry, request } = schema();
  return Buffer.from(toBinary(request, fromJson(request, json, { registry })));
}

/** One resource of a response: its encoded message, wrapped in an Any at write time. */
export interface EncodedResource {
  readonly name: string;
  /** Content hash of `bytes`: the resource's version. */
  readonly version: string;
  readonly bytes: Uint8Array;
}

/**
 * A DiscoveryResponse without its nonce (fields 1 version_info, 2 resources, 4 type_url),
 * written field by field from resources already encoded. Streams with the same subscription
 * share it and append their own nonce ({@link withNonce}): a push to a thousand streams copies
 * bytes instead of encoding a thousand messages.
 */
export function encodeResponseBody(typeUrl: string, versionInfo: string, resources: readonly EncodedResource[]): Buffer {
  const w = new BinaryWriter();
  w.tag(1, WireType.LengthDelimited).string(versionInfo);
  for (const r of resources) {
    w.tag(2, WireType.LengthDelimited).fork();
    w.tag(1, WireType.LengthDelimited).string(typeUrl);
    w.tag(2, WireType.LengthDelimited).bytes(r.bytes);
    w.join();
  }
  w.tag(4, WireType.LengthDelimited).string(typeUrl);
  return Buffer.from(w.finish());
}

/** The complete DiscoveryResponse: the body and field 5, the nonce (field order is free). */
export function withNonce(body: Buffer, nonce: string): Buffer {
  const w = new BinaryWriter();
  w.tag(5, WireType.LengthDelimited).string(nonce);
  return Buffer.concat([body, w.finish()]);
}

/** Decodes a response into proto3 JSON with its resources unpacked (for tests and tools). */
export function decodeDiscoveryResponse(bytes: Uint8Array): {
  versionInfo: string;
  typeUrl: string;
  nonce: string;
  resources: Array<Record<string, JsonValue>>;
} {
  const { registry, response } = schema();
  const json = toJson(response, fromBinary(response, bytes), { registry }) as Record<string, JsonValue>;
  return {
    versionInfo: (json['versionInfo'] as string | undefined) ?? '',
    typeUrl: (json['typeUrl'] as string | undefined) ?? '',
    nonce: (json['nonce'] as string | undefined) ?? '',
    resources: ((json['resources'] as JsonValue[] | undefined) ?? []) as Array<Record<string, JsonValue>>,
  };
}
