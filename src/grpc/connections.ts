import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';

/** Bounds on what clients may hold open on the gRPC port, whoever they are. */
export interface ConnectionLimits {
  /** Open connections in total; more are closed at accept. */
  readonly maxConnections: number;
  /** Open connections from one client address (a NAT'd fleet shares one: keep this generous). */
  readonly maxConnectionsPerAddress: number;
  /** Concurrent calls (unary and streams) in total; more are answered RESOURCE_EXHAUSTED. */
  readonly maxCalls: number;
  /** Concurrent calls on one connection; also advertised as HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS. */
  readonly maxCallsPerConnection: number;
  /** A connection with no call for this long is closed (0: never); grpc-js closes it with a GOAWAY. */
  readonly idleMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: Readonly<ConnectionLimits> = {
  maxConnections: 10_000,
  maxConnectionsPerAddress: 1_000,
  maxCalls: 20_000,
  maxCallsPerConnection: 1_000,
  idleMs: 300_000,
};

/** Counters for the metrics (monotonic ones only grow). */
export interface ConnectionStats {
  readonly connections: number;
  readonly calls: number;
  readonly refusedConnections: { readonly total: number; readonly perAddress: number };
  readonly refusedCalls: { readonly total: number; readonly perConnection: number };
  readonly idleClosed: number;
}

interface Connection {
  readonly socket: Socket;
  readonly address: string;
  calls: number;
  /** When the connection last had no call (clock.now()). */
  idleSince: number;
}

/** A call admitted by {@link ConnectionGate.admitCall}: `release` once it is over (idempotent). */
export type Admission = { readonly ok: true; release(): void } | { readonly ok: false; readonly message: string };

/**
 * Owns the accepted sockets of the gRPC port: refuses connections beyond the total and
 * per-address caps at accept (before any TLS or HTTP/2 work) and counts calls per
 * connection and in total. Idle connections are closed by grpc-js itself
 * (`grpc.max_connection_idle_ms`: a GOAWAY, so a call racing the close is retried by the
 * client); the gate counts a connection that ends after `idleMs` without a call as closed idle.
 */
export class ConnectionGate {
  readonly #limits: ConnectionLimits;
  readonly #clock: Clock;
  readonly #log: Logger;
  /** By `remoteAddress:remotePort`, which is how a call names its connection. */
  readonly #connections = new Map<string, Connection>();
  readonly #perAddress = new Map<string, number>();
  #calls = 0;
  #refusedTotal = 0;
  #refusedPerAddress = 0;
  #refusedCallsTotal = 0;
  #refusedCallsPerConnection = 0;
  #idleClosed = 0;
  #warned = new Set<string>();

  constructor(limits: ConnectionLimits, clock: Clock, logger: Logger) {
    for (const [name, value] of Object.entries(limits)) {
      const min = name === 'idleMs' ? 0 : 1;
      if (!Number.isInteger(value) || value < min) throw new RangeError(`connection limit ${name} must be an integer of at least ${min}, got ${value}`);
    }
    this.#limits = limits;
    this.#clock = clock;
    this.#log = logger.child({ component: 'connections' });
  }

  /** Takes a freshly accepted socket; false (socket destroyed) when a cap is reached. */
  admit(socket: Socket): boolean {
    const address = socket.remoteAddress ?? 'unknown';
    const key = `${address}:${socket.remotePort}`;
    const fromAddress = this.#perAddress.get(address) ?? 0;
    let refusal: string | undefined;
    if (this.#connections.size >= this.#limits.maxConnections) {
      this.#refusedTotal++;
      refusal = `connection limit reached (${this.#limits.maxConnections})`;
    } else if (fromAddress >= this.#limits.maxConnectionsPerAddress) {
      this.#refusedPerAddress++;
      refusal = `per-address connection limit reached (${this.#limits.maxConnectionsPerAddress})`;
    }
    if (refusal !== undefined) {
      this.#warnOnce(refusal, address);
      socket.destroy();
      return false;
    }
    const connection: Connection = { socket, address, calls: 0, idleSince: this.#clock.now() };
    this.#connections.set(key, connection);
    this.#perAddress.set(address, fromAddress + 1);
    socket.once('close', () => this.#forget(key, connection));
    return true;
  }

  /**
   * Counts a call on the connection `remote` names, or refuses it when a call cap is reached.
   * `peer` is its `address:port` joined already, when the caller keeps one per connection.
   */
  admitCall(remote: { readonly remoteAddress?: string; readonly remotePort?: number; readonly peer?: string }): Admission {
    const connection = this.#connections.get(remote.peer ?? `${remote.remoteAddress}:${remote.remotePort}`);
    if (this.#calls >= this.#limits.maxCalls) {
      this.#refusedCallsTotal++;
      return { ok: false, message: `too many concurrent calls on this node (limit ${this.#limits.maxCalls})` };
    }
    if (connection && connection.calls >= this.#limits.maxCallsPerConnection) {
      this.#refusedCallsPerConnection++;
      return { ok: false, message: `too many concurrent calls on this connection (limit ${this.#limits.maxCallsPerConnection})` };
    }
    this.#calls++;
    if (connection) connection.calls++;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.#calls--;
        if (connection && --connection.calls === 0) connection.idleSince = this.#clock.now();
      },
    };
  }

  stats(): ConnectionStats {
    return {
      connections: this.#connections.size,
      calls: this.#calls,
      refusedConnections: { total: this.#refusedTotal, perAddress: this.#refusedPerAddress },
      refusedCalls: { total: this.#refusedCallsTotal, perConnection: this.#refusedCallsPerConnection },
      idleClosed: this.#idleClosed,
    };
  }

  /** Destroys the connection `remote` names (a call's connection info), if it is still open. */
  close(remote: { readonly remoteAddress?: string; readonly remotePort?: number }): void {
    this.#connections.get(`${remote.remoteAddress}:${remote.remotePort}`)?.socket.destroy();
  }

  /** Destroys every socket (forced shutdown). */
  destroyAll(): void {
    for (const { socket } of [...this.#connections.values()]) socket.destroy();
  }

  #forget(key: string, connection: Connection): void {
    if (this.#connections.get(key) !== connection) return;
    this.#connections.delete(key);
    if (this.#limits.idleMs > 0 && connection.calls === 0 && this.#clock.now() - connection.idleSince >= this.#limits.idleMs) this.#idleClosed++;
    const left = (this.#perAddress.get(connection.address) ?? 1) - 1;
    if (left <= 0) this.#perAddress.delete(connection.address);
    else this.#perAddress.set(connection.address, left);
  }

  /** One warning per kind and address (the set is bounded): a flood of refusals must not flood the log. */
  #warnOnce(refusal: string, address: string): void {
    const key = `${refusal}|${address}`;
    if (this.#warned.has(key)) return;
    if (this.#warned.size > 1000) this.#warned.clear();
    this.#warned.add(key);
    this.#log.warn({ address, refusal }, 'refused a connection');
  }
}
