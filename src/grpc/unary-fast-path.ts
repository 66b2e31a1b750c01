import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Http2Connection } from './http2/connection.js';
import { constantHeaders, type ServerStream, type UnaryReceiver } from './http2/stream.js';
import type { Admitted, CallGuard, Caller } from './guard.js';

/** A unary method served without grpc-js' call machinery: its (adapted) codecs and its grpc-js handler. */
export interface FastUnaryMethod {
  readonly definition: grpc.MethodDefinition<unknown, unknown>;
  readonly handler: grpc.handleUnaryCall<unknown, unknown>;
}

export interface UnaryFastPathOptions {
  readonly server: grpc.Server;
  /** By method path. Any other path, and any call these cannot take (see {@link takesFastPath}), goes to grpc-js. */
  readonly methods: ReadonlyMap<string, FastUnaryMethod>;
  readonly guard: CallGuard;
  /** The status details of a request its decoder refused, or undefined for a decoded request. */
  readonly refusedDecoding: (request: unknown) => string | undefined;
  /** Told every call's outcome, as the grpc-js path's observer interceptor is. */
  readonly observe?: (method: string, code: grpc.status, seconds: number) => void;
  readonly maxReceiveMessageBytes: number;
  readonly logger: Logger;
}

// No `grpc-encoding` (identity is the default) and no `date` (gRPC does not use it); encoded
// once (the HPACK block is kept with the object).
const OK_HEADERS: OutgoingHttpHeaders = constantHeaders({
  ':status': 200,
  'content-type': 'application/grpc+proto',
  'grpc-accept-encoding': 'identity,deflate,gzip',
});
const OK_TRAILERS: OutgoingHttpHeaders = constantHeaders({ 'grpc-status': '0' });
const RESPOND_FAILED = { endStream: true };
/** gRPC's TimeoutValue (at most 8 digits) and TimeoutUnit, anchored as the spec writes it. */
const TIMEOUT = /^\d{1,8}[HMSmun]$/;
const FRAME_HEADER_BYTES = 5;

/** Takes one stream of the gRPC port (Roster's own HTTP/2, src/grpc/http2/) with its request headers. */
export type StreamListener = (stream: ServerStream, headers: IncomingHttpHeaders) => void;
/** grpc-js' handler of node:http2's server 'stream' event. */
type GrpcJsListener = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number) => void;

/**
 * What takes each stream of the gRPC port (src/grpc/http2/): unary RegistryService calls are
 * served here, straight from the stream; everything else goes to grpc-js' server. Per call,
 * grpc-js builds a call object, parses metadata, chains every interceptor (six here) and
 * tracks the call for channelz, which cost about half of a Register's server CPU
 * (BENCHMARKS.md). This path keeps what those layers do for a unary call — the guard (call
 * caps, credentials, app scopes), the observer, refusal of undecodable requests and of client
 * faults as INVALID_ARGUMENT, the receive limit — and hands the grpc-js handler a call object
 * with the request. Compressed requests, and every other method, take grpc-js' own path.
 *
 * grpc-js' own stream handler is an internal: the listener its server puts on the node:http2
 * server behind a connection injector. When it is not there (a grpc-js upgrade moved it), this
 * logs once and returns undefined, and the port is served by grpc-js and node:http2 alone.
 */
export function unaryFastPath(options: UnaryFastPathOptions): StreamListener | undefined {
  const servers = (options.server as unknown as { http2Servers?: unknown }).http2Servers;
  const http2Server = servers instanceof Map && servers.size === 1 ? ([...servers.keys()][0] as import('node:events').EventEmitter) : undefined;
  const grpcJs = http2Server?.listeners('stream');
  if (grpcJs?.length !== 1) {
    options.logger.warn('grpc-js internals for the unary fast path are missing: the port is served by grpc-js and node:http2');
    return undefined;
  }
  const [delegate] = grpcJs as [GrpcJsListener];
  return (stream, headers) => {
    const method = options.methods.get(headers[':path'] ?? '');
    // The streams have the part of node:http2's ServerHttp2Stream that grpc-js uses (stream.ts).
    if (method === undefined || !takesFastPath(headers)) return delegate(stream as unknown as ServerHttp2Stream, headers, 0);
    new FastUnaryCall(stream, headers, method, options).start();
  };
}

/** A gRPC request this path answers exactly as grpc-js would: identity-encoded, gRPC content type. */
function takesFastPath(headers: IncomingHttpHeaders): boolean {
  const contentType = headers['content-type'];
  if (contentType === undefined || !(contentType === 'application/grpc' || contentType.startsWith('application/grpc+') || contentType.startsWith('application/grpc;'))) return false;
  const encoding = headers['grpc-encoding'];
  return encoding === undefined || encoding === 'identity';
}

/**
 * Each session's remote address, read once: `session.socket` is a Proxy, and reading through it
 * on every call showed in profiles.
 */
const remotes = new WeakMap<Http2Connection, Remote>();
interface Remote {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly peer: string;
}
function remoteOf(session: Http2Connection | undefined): Remote {
  if (session === undefined) return { remoteAddress: undefined, remotePort: undefined, peer: 'unknown' };
  let remote = remotes.get(session);
  if (remote === undefined) {
    const { remoteAddress, remotePort } = session.socket;
    remote = { remoteAddress, remotePort, peer: `${remoteAddress}:${remotePort}` };
    remotes.set(session, remote);
  }
  return remote;
}

/** Why a complete unary request body is not one uncompressed gRPC message, or undefined. */
function framingProblem(body: Buffer): string | undefined {
  if (body.length < FRAME_HEADER_BYTES) return body.length === 0 ? 'the call ended without its request message' : 'the request message header was cut short';
  const declared = body.readUInt32BE(1);
  if (body.length < FRAME_HEADER_BYTES + declared) return `the request message was cut short (${body.length - FRAME_HEADER_BYTES} of ${declared} bytes)`;
  if (body[0] !== 0) return body[0] === 1 ? 'the request message is flagged compressed but the call has no grpc-encoding' : `the request message has an unknown flag byte ${body[0]}`;
  return undefined;
}

/** A gRPC length-prefixed message: flag 0 (uncompressed), 4-byte length, the bytes. */
function frame(message: Buffer): Buffer {
  const framed = Buffer.allocUnsafe(FRAME_HEADER_BYTES + message.length);
  framed[0] = 0;
  framed.writeUInt32BE(message.length, 1);
  message.copy(framed, FRAME_HEADER_BYTES);
  return framed;
}

/**
 * One unary call on the fast path: its state, what the guard reads of its caller, what a
 * grpc-js unary handler may read of its call (the request, the metadata built on demand, the
 * peer), and what the stream tells it (it is the stream's {@link UnaryReceiver}). One object
 * per call: closures per listener, a caller object with its own closures and a separate call
 * object were ~1 KB of garbage per call.
 */
class FastUnaryCall implements Caller, UnaryReceiver {
  readonly cancelled = false;
  request: unknown = undefined;
  readonly connection: Remote;
  readonly authorization: string | undefined;
  readonly #stream: ServerStream;
  readonly #headers: IncomingHttpHeaders;
  readonly #method: FastUnaryMethod;
  readonly #options: UnaryFastPathOptions;
  readonly #started = performance.now();
  #admitted: Admitted | undefined;
  #finished = false;
  #chunks: Buffer[] = [];
  #received = 0;
  #declared = -1;
  #metadata: grpc.Metadata | undefined;

  constructor(stream: ServerStream, headers: IncomingHttpHeaders, method: FastUnaryMethod, options: UnaryFastPathOptions) {
    this.#stream = stream;
    this.#headers = headers;
    this.#method = method;
    this.#options = options;
    this.connection = remoteOf(stream.session);
    const authorization = headers['authorization'];
    this.authorization = typeof authorization === 'string' ? authorization : undefined;
  }

  start(): void {
    this.#stream.receiveUnary(this);
    const timeout = this.#headers['grpc-timeout'];
    if (timeout !== undefined && (typeof timeout !== 'string' || !TIMEOUT.test(timeout))) return this.#finish(grpc.status.INVALID_ARGUMENT, `grpc-timeout: not a valid timeout: "${timeout}"`);
    const admitted = this.#options.guard.admit(this.#method.definition.path, this);
    if (!admitted.ok) return this.#finish(admitted.code, admitted.details);
    this.#admitted = admitted;
  }

  peer(): string {
    return this.connection.peer;
  }

  certificate(): ReturnType<Caller['certificate']> {
    const socket = this.#stream.session?.socket;
    if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
    const certificate = socket.getPeerCertificate();
    return certificate.raw ? certificate : undefined;
  }

  getPeer(): string {
    return this.connection.peer;
  }

  get metadata(): grpc.Metadata {
    return (this.#metadata ??= grpc.Metadata.fromHttp2Headers(this.#headers));
  }

  getDeadline(): number {
    return Infinity;
  }

  getPath(): string | undefined {
    return this.#headers[':path'];
  }

  received(chunk: Buffer): void {
    // After an answer (a refusal before the body came), what the client still sends is dropped.
    if (this.#finished) return;
    const chunks = this.#chunks;
    chunks.push(chunk);
    this.#received += chunk.length;
    if (this.#received < FRAME_HEADER_BYTES) return;
    if (this.#declared < 0) {
      this.#declared = (chunks.length === 1 ? chunk : Buffer.concat(chunks, this.#received)).readUInt32BE(1);
      const max = this.#options.maxReceiveMessageBytes;
      if (this.#declared > max) return this.#finish(grpc.status.RESOURCE_EXHAUSTED, `Received message larger than max (${this.#declared} vs ${max})`);
    }
    if (this.#received > FRAME_HEADER_BYTES + this.#declared) this.#finish(grpc.status.INVALID_ARGUMENT, 'a unary call carries exactly one request message');
  }

  ended(): void {
    if (this.#finished) return;
    const stream = this.#stream;
    // A stream reset or a connection lost also ends the readable side, before it closes.
    if (stream.rstCode !== 0 || stream.session === undefined) return this.#finish(grpc.status.CANCELLED, 'the client cancelled the call');
    const chunks = this.#chunks;
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#received);
    chunks.length = 0;
    const problem = framingProblem(body);
    if (problem !== undefined) return this.#finish(grpc.status.INVALID_ARGUMENT, problem);
    const method = this.#method;
    const request = method.definition.requestDeserialize(body.subarray(FRAME_HEADER_BYTES));
    const undecodable = this.#options.refusedDecoding(request);
    if (undecodable !== undefined) return this.#finish(grpc.status.INVALID_ARGUMENT, undecodable);
    const refusal = this.#admitted!.check(request);
    if (refusal !== undefined) return this.#finish(refusal.code, refusal.details);
    this.request = request;
    try {
      method.handler(this as unknown as grpc.ServerUnaryCall<unknown, unknown>, (err, value) => {
        if (err) return this.#finish(typeof err.code === 'number' ? err.code : grpc.status.UNKNOWN, err.details ?? (err as { message?: string }).message ?? '');
        this.#finish(grpc.status.OK, 'OK', method.definition.responseSerialize(value));
      });
    } catch (err) {
      this.#options.logger.error({ err, method: method.definition.path }, 'internal error');
      this.#finish(grpc.status.INTERNAL, 'internal error');
    }
  }

  closed(): void {
    this.#chunks.length = 0;
    this.#finish(grpc.status.CANCELLED, 'the client cancelled the call');
  }

  #finish(code: grpc.status, details: string, message?: Buffer): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#admitted?.release();
    this.#options.observe?.(this.#method.definition.path, code, (performance.now() - this.#started) / 1000);
    const stream = this.#stream;
    if (stream.destroyed || stream.closed) return;
    if (code === grpc.status.OK && message !== undefined) stream.answer(OK_HEADERS, frame(message), OK_TRAILERS);
    else stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto', 'grpc-status': String(code), 'grpc-message': encodeURI(details) }, RESPOND_FAILED);
  }
}
