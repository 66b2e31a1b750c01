import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import * as grpc from '@grpc/grpc-js';

/**
 * The standard grpc.health.v1.Health service (Check, Watch, List), with its three tiny messages
 * encoded by hand: grpc-health-check built them with proto-loader and protobufjs, about 2.5 MiB
 * of an idle node's RSS. Messages take the shapes proto-loader gives them (`{ service }`,
 * `{ status: 'SERVING' }`), so clients built from the .proto interoperate (test/grpc/health.test.ts).
 */
const STATUSES = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const;
/** HealthCheckResponse.ServingStatus; SERVICE_UNKNOWN is only ever sent by Watch. */
export type ServingStatus = (typeof STATUSES)[number];

export interface HealthCheckRequest {
  readonly service: string;
}

export interface HealthCheckResponse {
  readonly status: ServingStatus;
}

export interface HealthListResponse {
  readonly statuses: Readonly<Record<string, HealthCheckResponse>>;
}

/** Hands each field to `read`, which answers whether it took it; the others are skipped (unknown fields, as protobuf requires). */
function readFields(bytes: Uint8Array, read: (reader: BinaryReader, field: number, wireType: WireType) => boolean): void {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (!read(reader, field, wireType)) reader.skip(wireType, field);
  }
}

function encodeCheckRequest(request: HealthCheckRequest): Buffer {
  const writer = new BinaryWriter();
  if (request.service !== '') writer.tag(1, WireType.LengthDelimited).string(request.service);
  return Buffer.from(writer.finish());
}

function decodeCheckRequest(bytes: Uint8Array): HealthCheckRequest {
  let service = '';
  readFields(bytes, (reader, field, wireType) => {
    if (field !== 1 || wireType !== WireType.LengthDelimited) return false;
    service = reader.string();
    return true;
  });
  return { service };
}

function writeCheckResponse(writer: BinaryWriter, response: HealthCheckResponse): BinaryWriter {
  const value = STATUSES.indexOf(response.status);
  return value > 0 ? writer.tag(1, WireType.Varint).int32(value) : writer;
}

function encodeCheckResponse(response: HealthCheckResponse): Buffer {
  return Buffer.from(writeCheckResponse(new BinaryWriter(), response).finish());
}

function decodeCheckResponse(bytes: Uint8Array): HealthCheckResponse {
  let status: ServingStatus = 'UNKNOWN';
  readFields(bytes, (reader, field, wireType) => {
    if (field !== 1 || wireType !== WireType.Varint) return false;
    status = STATUSES[reader.int32()] ?? 'UNKNOWN';
    return true;
  });
  return { status };
}

/** `map<string, HealthCheckResponse> statuses = 1`: one entry message per service (key 1, value 2). */
function encodeListResponse(response: HealthListResponse): Buffer {
  const writer = new BinaryWriter();
  for (const [service, status] of Object.entries(response.statuses)) {
    writer.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string(service);
    writeCheckResponse(writer.tag(2, WireType.LengthDelimited).fork(), status).join().join();
  }
  return Buffer.from(writer.finish());
}

function decodeListResponse(bytes: Uint8Array): HealthListResponse {
  const statuses: Record<string, HealthCheckResponse> = {};
  readFields(bytes, (reader, field, wireType) => {
    if (field !== 1 || wireType !== WireType.LengthDelimited) return false;
    let service = '';
    let status: HealthCheckResponse = { status: 'UNKNOWN' };
    readFields(reader.bytes(), (entry, key, type) => {
      if (key === 1 && type === WireType.LengthDelimited) service = entry.string();
      else if (key === 2 && type === WireType.LengthDelimited) status = decodeCheckResponse(entry.bytes());
      else return false;
      return true;
    });
    statuses[service] = status;
    return true;
  });
  return { statuses };
}

const method = <Req, Res>(
  name: string,
  responseStream: boolean,
  request: readonly [(value: Req) => Buffer, (bytes: Buffer) => Req],
  response: readonly [(value: Res) => Buffer, (bytes: Buffer) => Res],
): grpc.MethodDefinition<Req, Res> => ({
  path: `/grpc.health.v1.Health/${name}`,
  requestStream: false,
  responseStream,
  requestSerialize: request[0],
  requestDeserialize: request[1],
  responseSerialize: response[0],
  responseDeserialize: response[1],
});

const CHECK_REQUEST = [encodeCheckRequest, decodeCheckRequest] as const;
const CHECK_RESPONSE = [encodeCheckResponse, decodeCheckResponse] as const;

/** grpc.health.v1.Health for grpc-js, to serve and to call. */
export const HEALTH_SERVICE_DEFINITION = {
  Check: method('Check', false, CHECK_REQUEST, CHECK_RESPONSE),
  Watch: method('Watch', true, CHECK_REQUEST, CHECK_RESPONSE),
  List: method<Record<string, never>, HealthListResponse>('List', false, [() => Buffer.alloc(0), () => ({})], [encodeListResponse, decodeListResponse]),
} satisfies grpc.ServiceDefinition;

/**
 * Serving status per service name. Check answers a name never set NOT_FOUND; Watch sends the
 * current status (SERVICE_UNKNOWN for a name never set) and then every status set for its
 * name, until the client cancels; List answers every status set.
 */
export class HealthService {
  readonly #statuses = new Map<string, ServingStatus>();
  readonly #watchers = new Map<string, Set<(status: ServingStatus) => void>>();

  setStatus(service: string, status: ServingStatus): void {
    this.#statuses.set(service, status);
    for (const watcher of this.#watchers.get(service) ?? []) watcher(status);
  }

  readonly implementation: grpc.UntypedServiceImplementation = {
    Check: ((call, callback) => {
      const status = this.#statuses.get(call.request.service);
      if (status === undefined) callback({ code: grpc.status.NOT_FOUND, details: `Health status unknown for service ${call.request.service}` });
      else callback(null, { status });
    }) satisfies grpc.handleUnaryCall<HealthCheckRequest, HealthCheckResponse>,
    Watch: ((call) => {
      const { service } = call.request;
      const send = (status: ServingStatus): void => void call.write({ status });
      let watchers = this.#watchers.get(service);
      if (watchers === undefined) this.#watchers.set(service, (watchers = new Set()));
      watchers.add(send);
      call.on('cancelled', () => {
        watchers.delete(send);
        if (watchers.size === 0 && this.#watchers.get(service) === watchers) this.#watchers.delete(service);
      });
      send(this.#statuses.get(service) ?? 'SERVICE_UNKNOWN');
    }) satisfies grpc.handleServerStreamingCall<HealthCheckRequest, HealthCheckResponse>,
    List: ((_call, callback) => {
      callback(null, { statuses: Object.fromEntries([...this.#statuses].map(([service, status]) => [service, { status }])) });
    }) satisfies grpc.handleUnaryCall<Record<string, never>, HealthListResponse>,
  };
}
