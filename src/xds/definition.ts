import type * as grpc from '@grpc/grpc-js';

/*
 * Apart from protos.ts so that the server can register the service at start-up without
 * loading @bufbuild/protobuf's reflection (see service.ts).
 */

const ADS = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
const identity = (b: Buffer): Buffer => b;

function rawStream(method: string): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path: `/${ADS}/${method}`,
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

/**
 * The ADS service definition with raw-byte codecs: requests are decoded by the handler (so a
 * malformed one is answered, not dropped by grpc-js) and responses are written pre-encoded.
 */
export const AGGREGATED_DISCOVERY_SERVICE: grpc.ServiceDefinition = {
  StreamAggregatedResources: rawStream('StreamAggregatedResources'),
  DeltaAggregatedResources: rawStream('DeltaAggregatedResources'),
};
