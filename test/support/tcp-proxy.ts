import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a local port, so tests and benchmarks can cut a link
 * (every open connection destroyed, new ones refused while refusing), stall it, and heal it.
 */
export class TcpProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #refusing = false;
  #bytesDown = 0;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(upstreamPort: number): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server);
    server.on('connection', (client) => proxy.#pipe(client, upstreamPort));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return proxy;
  }

  get address(): string {
    return `127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Destroys every open connection; with `refuse`, new ones are closed at once until {@link accept}. */
  cut(refuse = false): void {
    this.#refusing = refuse;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  /** Stops forwarding bytes on open connections: calls stay in flight until {@link cut}. */
  hold(): void {
    for (const s of this.#sockets) s.pause();
  }

  /** Bytes relayed from the upstream port back to clients since the last call (what a reader received). */
  takeBytesDown(): number {
    const bytes = this.#bytesDown;
    this.#bytesDown = 0;
    return bytes;
  }

  /** Forwards new connections again. */
  accept(): void {
    this.#refusing = false;
  }

  async close(): Promise<void> {
    this.cut(true);
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #pipe(client: Socket, upstreamPort: number): void {
    if (this.#refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(upstreamPort, '127.0.0.1');
    upstream.on('data', (chunk: Buffer) => (this.#bytesDown += chunk.length));
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.#sockets.add(a);
      a.setNoDelay(true);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        this.#sockets.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  }
}
