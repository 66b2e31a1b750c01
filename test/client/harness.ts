import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { resolveConfig } from '../../src/cli/config.js';
import { startNode, type RosterNode } from '../../src/cli/node.js';

/** A node on 127.0.0.1 with free ports and a silent logger; `flags` override settings. */
export function startTestNode(flags: Record<string, unknown> = {}): Promise<RosterNode> {
  const config = resolveConfig({
    flags: { port: 0, httpPort: 0, logLevel: 'silent', nodeId: 'test-node', shutdownGraceMs: 500, ...flags },
  });
  return startNode(config, pino({ level: 'silent' }));
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A logger whose records land in `lines` (parsed), to assert on what a component reported. */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

/**
 * A TCP proxy in front of a server, so a test can cut every connection (what a client sees when
 * a server or a network path fails) and refuse new ones for a while.
 */
export class TcpProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #refusing = false;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(upstreamPort: number): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server);
    server.on('connection', (client) => proxy.#pipe(client, upstreamPort));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
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
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.#sockets.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        this.#sockets.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  }
}
