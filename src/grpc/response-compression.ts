import * as grpc from '@grpc/grpc-js';

/**
 * gzip-compressed responses, which grpc-js' server does not offer: it always answers
 * `grpc-encoding: identity` and frames every message with compressed flag 0 (it does
 * decompress requests). This is the one place that reaches into grpc-js internals
 * (@grpc/grpc-js 1.14, build/src/server-interceptors.js, class BaseServerInterceptingCall):
 *
 * - the first server interceptor is handed grpc-js' base call itself (`getServerInterceptingCall`
 *   reduces the interceptor list over it);
 * - its `incomingEncoding` field holds the request's `grpc-encoding` header (grpc-js removes the
 *   header from the metadata handlers see);
 * - its `serializeMessage(value)` turns a response into the bytes written to the HTTP/2 stream
 *   (flag byte, 4-byte length, message); replacing it on that one call lets a handler write a
 *   frame it built itself, compressed or not, without another copy.
 *
 * Response headers need no internal: grpc-js lets metadata a handler sends override its default
 * `grpc-encoding`. test/grpc/response-compression.test.ts fails if an upgrade breaks any of this;
 * if the internals are missing at run time, calls are answered uncompressed (and logged once).
 *
 * "The client asked for gzip" means: the request arrived with `grpc-encoding: gzip`, which is
 * what grpc-js' channel option `grpc.default_compression_algorithm` (2), grpc-go's
 * `grpc.UseCompressor(gzip.Name)`, grpc-java's `withCompression("gzip")` and Python's
 * `compression=grpc.Compression.Gzip` send; each of them also lists gzip in
 * `grpc-accept-encoding`, which grpc-js drops before any interceptor runs, so it cannot be
 * checked here. grpc-go's server makes the same choice: it answers in the request's encoding.
 */

/** A response already framed for the wire: a hooked call writes `frame` as it is. */
export class FramedMessage {
  constructor(readonly frame: Buffer) {}
}

/** What a hooked call will do with its responses: `gzip` when its client asked for it. */
export type ResponseEncoding = 'gzip' | 'identity';

interface BaseCallInternals {
  incomingEncoding?: unknown;
  serializeMessage?: (value: unknown) => Buffer;
}

const GRPC_FRAME_HEADER_BYTES = 5;

/** Metadata of hooked calls (the object handlers get as `call.metadata`), with the encoding negotiated. */
const negotiated = new WeakMap<grpc.Metadata, ResponseEncoding>();

/**
 * The encoding responses of this call may use, from the metadata its handler received;
 * undefined when the call is not hooked (another method, or grpc-js internals missing): then
 * write ordinary messages, not {@link FramedMessage}s.
 */
export function responseEncoding(metadata: grpc.Metadata): ResponseEncoding | undefined {
  return negotiated.get(metadata);
}

/** `bytes` as one gRPC message frame: the compressed flag, the length (big-endian), the bytes. */
export function frameMessage(bytes: Uint8Array, compressed: boolean): Buffer {
  const frame = Buffer.allocUnsafeSlow(GRPC_FRAME_HEADER_BYTES + bytes.length);
  frame[0] = compressed ? 1 : 0;
  frame.writeUInt32BE(bytes.length, 1);
  frame.set(bytes, GRPC_FRAME_HEADER_BYTES);
  return frame;
}

/** The message inside a frame built by {@link frameMessage} (a view, no copy). */
export function frameBody(frame: Buffer): Buffer {
  return frame.subarray(GRPC_FRAME_HEADER_BYTES);
}

/**
 * A server interceptor that hooks the calls of `paths` (see the file comment). It must be the
 * FIRST interceptor of the server, so that it is handed grpc-js' base call. `onMissingHook` is
 * told once if grpc-js no longer has the internals relied on.
 */
export function responseCompression(paths: ReadonlySet<string>, onMissingHook: () => void): grpc.ServerInterceptor {
  let warned = false;
  return (descriptor, call) => {
    // Other methods get the call itself, not a wrapper per call (grpc-js only chains the result).
    if (!paths.has(descriptor.path)) return call as grpc.ServerInterceptingCall;
    const base = call as unknown as BaseCallInternals;
    const original = base.serializeMessage;
    if (typeof original !== 'function' || typeof base.incomingEncoding !== 'string') {
      if (!warned) onMissingHook();
      warned = true;
      return call as grpc.ServerInterceptingCall;
    }
    const encoding: ResponseEncoding = base.incomingEncoding.toLowerCase() === 'gzip' ? 'gzip' : 'identity';
    base.serializeMessage = function (this: unknown, value: unknown): Buffer {
      return value instanceof FramedMessage ? value.frame : original.call(this, value);
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, forward) => {
            negotiated.set(metadata, encoding);
            forward(metadata);
          },
        }),
      sendMetadata: (metadata, next) => {
        if (encoding === 'gzip') metadata.set('grpc-encoding', 'gzip');
        next(metadata);
      },
    });
  };
}
