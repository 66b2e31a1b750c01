import * as grpc from '@grpc/grpc-js';

/**
 * A one-method gRPC service whose answer names the server, so a test can see which instance
 * took each call. Raw-byte codecs: the message is the server's name in UTF-8.
 */
const bytes = (b: Buffer): Buffer => b;
export const ECHO_SERVICE: grpc.ServiceDefinition = {
  Who: {
    path: '/roster.test.Echo/Who',
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  },
};

export interface EchoServer {
  readonly name: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startEcho(name: string): Promise<EchoServer> {
  const server = new grpc.Server();
  server.addService(ECHO_SERVICE, {
    Who: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, Buffer.from(name)),
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return {
    name,
    port,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}
