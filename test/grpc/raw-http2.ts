import http2 from 'node:http2';
import { WAIT_MS } from './helpers.js';

/**
 * gRPC over plain node:http2, for requests no gRPC client sends: corrupt compressed frames,
 * malformed headers, bytes that are not UTF-8, peers that never read.
 */

/** One HTTP/2 frame's bytes, for clients node:http2 would not be. */
export function rawFrame(type: number, flags: number, id: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(id, 5);
  return Buffer.concat([header, payload]);
}

/** One gRPC length-prefixed message: flag byte (1 = compressed), 4-byte length, bytes. */
export function grpcFrame(message: Uint8Array, compressed = false): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt8(compressed ? 1 : 0, 0);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** The gRPC status a raw call ended with (from trailers, or headers for trailers-only). */
export interface RawStatus {
  readonly code: number;
  readonly details: string;
}

/** Opens a session to `port`; `settings` e.g. a tiny `initialWindowSize` for a peer that never reads. */
export function connect(port: number, settings: http2.Settings = {}): http2.ClientHttp2Session {
  return http2.connect(`http://127.0.0.1:${port}`, { settings });
}

/** Starts a call: POST `path` with gRPC's headers plus `headers`. */
export function openCall(session: http2.ClientHttp2Session, path: string, headers: http2.OutgoingHttpHeaders = {}): http2.ClientHttp2Stream {
  return session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
}

/** Sends `frames` on a new call, ends it, and resolves with its status (rejects after WAIT_MS). */
export function rawCall(port: number, path: string, frames: readonly Buffer[], headers: http2.OutgoingHttpHeaders = {}): Promise<RawStatus> {
  const session = connect(port);
  return new Promise<RawStatus>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no status for ${path} within ${WAIT_MS} ms`)), WAIT_MS);
    const stream = openCall(session, path, headers);
    let status: RawStatus | undefined;
    const take = (h: http2.IncomingHttpHeaders): void => {
      const code = h['grpc-status'];
      if (code !== undefined) status = { code: Number(code), details: decodeURIComponent(String(h['grpc-message'] ?? '')) };
    };
    stream.on('response', take);
    stream.on('trailers', take);
    stream.on('data', () => undefined);
    stream.on('error', () => undefined);
    stream.on('close', () => {
      clearTimeout(timer);
      if (status) resolve(status);
      else reject(new Error(`${path}: stream closed without a gRPC status (rst ${stream.rstCode})`));
    });
    for (const frame of frames) stream.write(frame);
    stream.end();
  }).finally(() => session.close());
}
