import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Change, ChangeType, InstanceStatus } from '../core/types.js';

/** What the browser learns of one change: enough to highlight it and refresh what it shows. */
export interface ChangeNote {
  readonly revision: number;
  readonly type: ChangeType;
  readonly app: string;
  readonly instanceId: string;
  readonly status: InstanceStatus;
}

export interface FeedOptions {
  readonly logger: Logger;
  /** A client whose unsent bytes exceed this is dropped with a `resync` event (default 1 MiB). */
  readonly maxBufferedBytes?: number;
  /** Changes are sent in one event per this window (default 100 ms). */
  readonly flushMs?: number;
  /** At most this many changes are described per event; the rest are only counted (default 200). */
  readonly maxNotesPerEvent?: number;
  /** Concurrent event streams; more get 503 (default 64). */
  readonly maxClients?: number;
}

/**
 * Server-sent events for the dashboard, fed by the registry's change feed (the same
 * `subscribe` that Watch uses). Changes are coalesced into one `changes` event per window and
 * serialised once for every client. Memory is bounded per client: one that cannot keep up is
 * not buffered for, it gets a `resync` event and is closed, and the browser reconnects
 * (`retry`) and reloads what it shows — the same contract as Watch's resync_required.
 */
export class EventFeed {
  readonly #log: Logger;
  readonly #maxBuffered: number;
  readonly #flushMs: number;
  readonly #maxNotes: number;
  readonly #maxClients: number;
  readonly #clients = new Set<ServerResponse>();
  #notes: ChangeNote[] = [];
  #omitted = 0;
  #revision = 0;
  /** A real timer: this paces socket writes, it is not domain timing (the node's clock may be fake). */
  #timer: NodeJS.Timeout | undefined;
  #dropped = 0;

  constructor(options: FeedOptions) {
    this.#log = options.logger;
    this.#maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
    this.#flushMs = options.flushMs ?? 100;
    this.#maxNotes = options.maxNotesPerEvent ?? 200;
    this.#maxClients = options.maxClients ?? 64;
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** Clients dropped for falling behind, since start. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Takes over a request as an event stream; `hello` carries the revision it starts from. */
  attach(req: IncomingMessage, res: ServerResponse, revision: number): void {
    if (this.#clients.size >= this.#maxClients) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '5' });
      res.end('too many dashboard event streams\n');
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    this.#clients.add(res);
    const forget = (): void => {
      this.#clients.delete(res);
    };
    req.socket.setNoDelay(true);
    res.on('close', forget);
    res.on('error', forget);
    this.#send(res, `retry: 1000\n${frame('hello', { revision })}`);
  }

  /** Queues a change for the next window's `changes` event. */
  change(change: Change): void {
    this.#revision = change.revision;
    if (this.#clients.size === 0) return;
    if (this.#notes.length < this.#maxNotes) {
      const { app, instanceId, status } = change.instance.record;
      this.#notes.push({ revision: change.revision, type: change.type, app, instanceId, status });
    } else {
      this.#omitted++;
    }
    this.#timer ??= setTimeout(() => this.#flush(), this.#flushMs).unref();
  }

  /** Sends an event to every client now (e.g. the periodic overview). */
  broadcast(event: string, data: unknown): void {
    if (this.#clients.size === 0) return;
    const text = frame(event, data);
    for (const res of this.#clients) this.#send(res, text);
  }

  /** Ends every stream (node shutdown). */
  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }

  #flush(): void {
    this.#timer = undefined;
    if (this.#notes.length === 0 && this.#omitted === 0) return;
    const event = { revision: this.#revision, changes: this.#notes, omitted: this.#omitted };
    this.#notes = [];
    this.#omitted = 0;
    this.broadcast('changes', event);
  }

  #send(res: ServerResponse, text: string): void {
    if (res.writableLength > this.#maxBuffered) {
      // It has not read what it was sent: stop buffering for it, tell it to reload on reconnect.
      this.#clients.delete(res);
      this.#dropped++;
      this.#log.warn({ buffered: res.writableLength, limit: this.#maxBuffered }, 'dashboard event stream fell behind: dropped with resync');
      res.end(frame('resync', { reason: 'fell behind' }));
      // A client that never reads would hold its buffer forever: the socket goes after a grace.
      const kill = setTimeout(() => res.destroy(), DRAIN_GRACE_MS).unref();
      res.once('close', () => clearTimeout(kill));
      return;
    }
    res.write(text);
  }
}

/** How long a dropped client gets to read its resync event before its socket is destroyed. */
const DRAIN_GRACE_MS = 5000;

function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
