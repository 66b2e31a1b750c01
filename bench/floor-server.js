// A bare unary gRPC server for `npm run bench -- --floor` (bench/floor.ts): answers every call
// with the same few bytes, doing nothing else, so its CPU per call is what the HTTP/2 and gRPC
// layers alone cost. `node bench/floor-server.js http2|grpc-js PORT`; prints "listening" when
// it accepts calls, and exits on SIGTERM.
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';

const [kind, port] = [process.argv[2], Number(process.argv[3])];
/** A HeartbeatResponse { status: UP }, and the same bytes framed as a gRPC message. */
const MESSAGE = Buffer.from([0x08, 0x01]);
const FRAMED = Buffer.concat([Buffer.from([0, 0, 0, 0, MESSAGE.length]), MESSAGE]);
const PATHS = ['/roster.v1.RegistryService/Heartbeat', '/roster.v1.RegistryService/Register'];

function sendTrailers() {
  this.sendTrailers({ 'grpc-status': '0' });
}

function onListening() {
  console.log('listening');
}

if (kind === 'http2') {
  // As Roster's unary fast path answers: headers, one message, trailers.
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.on('data', () => undefined);
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto' }, { waitForTrailers: true, sendDate: false });
      stream.on('wantTrailers', sendTrailers);
      stream.end(FRAMED);
    });
  });
  server.listen(port, '127.0.0.1', onListening);
} else if (kind === 'grpc-js') {
  const server = new grpc.Server();
  const same = (value) => value;
  const service = Object.fromEntries(
    PATHS.map((path) => [path, { path, requestStream: false, responseStream: false, requestSerialize: same, requestDeserialize: same, responseSerialize: same, responseDeserialize: same }]),
  );
  const handlers = Object.fromEntries(PATHS.map((path) => [path, (_call, callback) => callback(null, MESSAGE)]));
  server.addService(service, handlers);
  server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) throw err;
    onListening();
  });
} else {
  console.error(`usage: floor-server.js http2|grpc-js PORT (got ${kind})`);
  process.exit(2);
}
process.on('SIGTERM', () => process.exit(0));
