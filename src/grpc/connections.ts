import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../core/clock.js';

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
  /** A connection with no call for this long is closed (0: never). */
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
  idle: TimerHandle | undefined;
}

/** A call admitted by {@link ConnectionGate.admitCall}: `release` once it is over (idempotent). */
export type Admission = { readonly ok: true; release(): void } | { readonly ok: false; readonly message: string };

/**
 * Owns the accepted sockets of the gRPC port: refuses connections beyond the total and
 * per-address caps at accept (before any TLS or HTTP/2 work), counts calls per connection
 * and in total, and closes a connection that carried no call for `idleMs`. An idle
 * connection has nothing in flight, so closing it loses nothing; the client redials when
 * it next needs to.
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
    const connection: Connection = { socket, address, calls: 0, idle: undefined };
    this.#connections.set(key, connection);
    this.#perAddress.set(address, fromAddress + 1);
    socket.once('close', () => this.#forget(key, connection));
    this.#armIdle(connection);
    return true;
  }

  /** Counts a call on the connection `remote` names, or refuses it when a call cap is reached. */
  admitCall(remote: { readonly remoteAddress?: string; readonly remotePort?: number }): Admission {
    const connection = this.#connections.get(`${remote.remoteAddress}:${remote.remotePort}`);
    if (this.#calls >= this.#limits.maxCalls) {
      this.#refusedCallsTotal++;
      return { ok: false, message: `too many concurrent calls on this node (limit ${this.#limits.maxCalls})` };
    }
    if (connection && connection.calls >= this.#limits.maxCallsPerConnection) {
      this.#refusedCallsPerConnection++;
      return { ok: false, message: `too many concurrent calls on this connection (limit ${this.#limits.maxCallsPerConnection})` };
    }
    this.#calls++;
    if (connection) {
      connection.calls++;
      if (connection.idle) this.#clock.clearTimeout(connection.idle);
      connection.idle = undefined;
    }
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.#calls--;
        if (connection && --connection.calls === 0 && this.#connections.has(`${connection.address}:${connection.socket.remotePort}`)) this.#armIdle(connection);
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

  /** Destroys every socket (forced shutdown). */
  destroyAll(): void {
    for (const { socket } of [...this.#connections.values()]) socket.destroy();
  }

  #armIdle(connection: Connection): void {
    if (this.#limits.idleMs === 0) return;
    connection.idle = this.#clock.setTimeout(() => {
      connection.idle = undefined;
      if (connection.calls > 0 || connection.socket.destroyed) return;
      this.#idleClosed++;
      connection.socket.destroy();
    }, this.#limits.idleMs);
  }

  #forget(key: string, connection: Connection): void {
    if (this.#connections.get(key) !== connection) return;
    this.#connections.delete(key);
    if (connection.idle) this.#clock.clearTimeout(connection.idle);
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
