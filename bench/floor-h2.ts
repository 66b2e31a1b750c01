// A bare unary gRPC server on Roster's own HTTP/2 (src/grpc/http2/), for `npm run bench --
// --floor`: it answers every call with the same bytes, as floor-server.js does on node:http2 and
// grpc-js, so its CPU per call is what the port's HTTP/2 alone costs. Headers, one message and
// trailers, as the unary fast path answers. `node --import tsx bench/floor-h2.ts PORT`; prints
// "listening" when it accepts calls, and exits on SIGTERM.
import { createServer } from 'node:net';
import { Http2Connection } from '../src/grpc/http2/connection.js';
import { constantHeaders, type ServerStream } from '../src/grpc/http2/stream.js';

const port = Number(process.argv[2]);
/** A HeartbeatResponse { status: UP }, framed as a gRPC message. */
const FRAMED = Buffer.from([0, 0, 0, 0, 2, 0x08, 0x01]);
const HEADERS = constantHeaders({ ':status': 200, 'content-type': 'application/grpc+proto' });
const TRAILERS = constantHeaders({ 'grpc-status': '0' });

function ignore(): void {}
function sendTrailers(this: ServerStream): void {
  this.sendTrailers(TRAILERS);
}
function answer(this: ServerStream): void {
  this.respond(HEADERS, { waitForTrailers: true });
  this.on('wantTrailers', sendTrailers);
  this.end(FRAMED);
}

createServer((socket) => {
  new Http2Connection(socket, {
    maxConcurrentStreams: 1000,
    onStream: (stream) => {
      stream.on('data', ignore);
      stream.on('end', answer);
    },
  });
}).listen(port, '127.0.0.1', () => console.log('listening'));
process.on('SIGTERM', () => process.exit(0));
