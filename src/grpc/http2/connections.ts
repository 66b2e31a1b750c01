import type { Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { TlsMaterial, TlsPem } from '../../security/tls-material.js';
import { Http2Connection, type Http2ConnectionOptions } from './connection.js';

/** A client that has not finished its TLS handshake by then is cut (node's TLS servers wait 120 s). */
const HANDSHAKE_TIMEOUT_MS = 30_000;

export interface Http2ConnectionsOptions extends Http2ConnectionOptions {
  /** Serve TLS (ALPN `h2`) with this material, following its reloads for new handshakes; default plain text. */
  readonly tls?: TlsMaterial;
  /** With `tls` and a CA: `require` a verified client certificate, verify one when presented (`optional`), or ask for none. */
  readonly clientAuth?: 'require' | 'optional' | 'none';
}

/** The gRPC port's HTTP/2 connections: each accepted socket (after the TLS handshake, with TLS) becomes one. */
export class Http2Connections {
  readonly #options: Http2ConnectionsOptions;
  readonly #open = new Set<Http2Connection>();
  /** Never listens: accepted sockets are handed to it for the handshake (and verification of client certificates). */
  readonly #tls: TlsServer | undefined;
  #closing: (() => void) | undefined;

  constructor(options: Http2ConnectionsOptions) {
    this.#options = options;
    const tls = options.tls;
    if (tls !== undefined) {
      const auth = options.clientAuth ?? 'require';
      const server = createTlsServer({
        ...pemOptions(tls.pem),
        ALPNProtocols: ['h2'],
        requestCert: tls.hasCa && auth !== 'none',
        rejectUnauthorized: tls.hasCa && auth === 'require',
        handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      });
      tls.onChange((pem) => server.setSecureContext(pemOptions(pem)));
      server.on('secureConnection', (secure: TLSSocket) => {
        // gRPC is HTTP/2 only: a client that did not ask for h2 would not be understood.
        if (secure.alpnProtocol !== 'h2') return void secure.destroy();
        this.#serve(secure);
      });
      // A failed handshake (a certificate refused, a client that never finished) ends its socket.
      server.on('tlsClientError', (_err, secure) => secure.destroy());
      this.#tls = server;
    }
  }

  accept(socket: Socket): void {
    if (this.#tls === undefined) this.#serve(socket);
    else this.#tls.emit('connection', socket);
  }

  /** Sends every connection GOAWAY; resolves once all are closed (their open streams done). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#closing = resolve;
      if (this.#open.size === 0) resolve();
      for (const connection of this.#open) connection.close();
    });
  }

  #serve(socket: Socket): void {
    const connection = new Http2Connection(socket, this.#options);
    this.#open.add(connection);
    socket.once('close', () => {
      this.#open.delete(connection);
      if (this.#open.size === 0) this.#closing?.();
    });
  }
}

function pemOptions(pem: TlsPem): { cert: Buffer; key: Buffer; ca?: Buffer } {
  return { cert: pem.cert, key: pem.key, ...(pem.ca ? { ca: pem.ca } : {}) };
}
