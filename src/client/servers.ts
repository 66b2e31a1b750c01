import { lookup } from 'node:dns/promises';
import { status, type ChannelCredentials, type ClientOptions, type ServiceError } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { RegistryServiceClient } from '../gen/roster/v1/registry_service.js';
import { isServiceError } from './errors.js';

/** One channel to one server; calls carry it so a failure names the server that failed. */
export interface Connection {
  readonly address: string;
  readonly stub: RegistryServiceClient;
  /** The stub full reads use: `stub` itself, or one on a second channel with {@link ServerSetOptions.readChannelOptions}. */
  readonly reads: RegistryServiceClient;
}

/** Where the servers are and how to reach them (credentials, channel options). */
export interface ServerSetOptions {
  /** `host:port` addresses, tried in order. */
  readonly servers: readonly string[];
  /** A `name:port` whose every address is a server (e.g. a Kubernetes Service); resolved again on each full round of failures. */
  readonly dns?: string | undefined;
  readonly credentials: ChannelCredentials;
  readonly channelOptions: Partial<ClientOptions>;
  /** Set: full reads go on a second channel to the same server with these options on top (e.g. gzip). */
  readonly readChannelOptions?: Partial<ClientOptions> | undefined;
  readonly logger: Logger;
  /** Told whenever the client moves to another server. */
  readonly onFailover?: (from: string, to: string, err: ServiceError) => void;
}

/**
 * Codes after which the next call should go to another server: the server is down, shutting
 * down or not yet synced (UNAVAILABLE), or does not answer (DEADLINE_EXCEEDED).
 */
export function isServerFailure(err: unknown): boolean {
  return isServiceError(err) && (err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED);
}

/**
 * The servers a client may use, and the one it sticks to. A failure reported on the current
 * connection moves the client to the next server (round-robin over the static list followed by
 * the DNS name's addresses); a failure on an older connection is ignored, so many calls failing
 * together move it once. Channels are opened lazily and the old one is closed on failover.
 */
export class ServerSet {
  readonly #options: ServerSetOptions;
  readonly #log: Logger;
  #resolved: string[] = [];
  #index = 0;
  #current: Connection | undefined;
  #resolving: Promise<void> | undefined;
  #closed = false;
  /** Consecutive failovers without a successful call: a full round of them means "all servers failed". */
  #failovers = 0;

  constructor(options: ServerSetOptions) {
    if (options.servers.length === 0 && !options.dns) throw new Error('RosterClient needs at least one server or a DNS name');
    for (const server of options.servers) parseHostPort(server);
    if (options.dns) parseHostPort(options.dns);
    this.#options = options;
    this.#log = options.logger.child({ component: 'roster-client' });
    if (options.dns) void this.refresh();
  }

  /** The candidate addresses: static servers, then the DNS name's addresses (or the name itself until resolved). */
  get addresses(): readonly string[] {
    const dns = this.#options.dns ? (this.#resolved.length > 0 ? this.#resolved : [this.#options.dns]) : [];
    return [...this.#options.servers, ...dns];
  }

  /** Consecutive failovers since the last success; ≥ addresses.length means every server failed once. */
  get failovers(): number {
    return this.#failovers;
  }

  /** The connection calls should use now. */
  current(): Connection {
    if (this.#closed) throw new Error('RosterClient is closed');
    if (this.#current === undefined) {
      const addresses = this.addresses;
      const address = addresses[this.#index % addresses.length]!;
      const { credentials, channelOptions, readChannelOptions } = this.#options;
      const stub = new RegistryServiceClient(address, credentials, channelOptions);
      // Channels connect on their first call: the second one costs nothing until a full read.
      const reads = readChannelOptions ? new RegistryServiceClient(address, credentials, { ...channelOptions, ...readChannelOptions }) : stub;
      this.#current = { address, stub, reads };
      this.#log.debug({ server: address }, 'connecting');
    }
    return this.#current;
  }

  /** A call on `conn` worked: the server is fine. */
  succeeded(conn: Connection): void {
    if (conn === this.#current) this.#failovers = 0;
  }

  /**
   * `err` happened on `conn`. When it is a server failure on the current connection, moves to
   * the next server and returns true; otherwise returns false.
   */
  failed(conn: Connection, err: unknown): boolean {
    if (conn !== this.#current || !isServerFailure(err) || this.#closed) return false;
    this.#current = undefined;
    closeConnection(conn);
    this.#index = (this.#index + 1) % Math.max(1, this.addresses.length);
    this.#failovers++;
    if (this.#index === 0 && this.#options.dns) void this.refresh();
    const to = this.addresses[this.#index % this.addresses.length]!;
    this.#log.warn({ server: conn.address, next: to, code: (err as ServiceError).code, reason: (err as ServiceError).details }, 'server failed; failing over');
    this.#options.onFailover?.(conn.address, to, err as ServiceError);
    return true;
  }

  /** Resolves the DNS name again (all its addresses, sorted so every client sees the same order). */
  refresh(): Promise<void> {
    const dns = this.#options.dns;
    if (!dns) return Promise.resolve();
    this.#resolving ??= (async () => {
      const { host, port } = parseHostPort(dns);
      try {
        const answers = await lookup(host, { all: true });
        const addresses = answers.map((a) => (a.family === 6 ? `[${a.address}]:${port}` : `${a.address}:${port}`)).sort();
        if (addresses.length > 0) this.#resolved = addresses;
        this.#log.debug({ dns, addresses }, 'servers resolved');
      } catch (err) {
        this.#log.warn({ err, dns }, "cannot resolve the servers' DNS name; keeping the previous answer");
      } finally {
        this.#resolving = undefined;
      }
    })();
    return this.#resolving;
  }

  close(): void {
    this.#closed = true;
    if (this.#current) closeConnection(this.#current);
    this.#current = undefined;
  }
}

function closeConnection(conn: Connection): void {
  conn.stub.close();
  if (conn.reads !== conn.stub) conn.reads.close();
}

/** Splits `host:port` or `[v6]:port`; throws naming the address when it is neither. */
export function parseHostPort(address: string): { host: string; port: number } {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+)):(\d{1,5})$/.exec(address);
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65535) throw new Error(`server address "${address}" must be host:port`);
  return { host: match[1] ?? match[2]!, port };
}
