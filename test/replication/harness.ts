import { FakeClock } from '../../src/core/clock.js';
import { recordFields } from '../../src/core/entry.js';
import { Registry } from '../../src/core/registry.js';
import type { LinkError, PeerDigest, PeerLink, PeerSnapshot, ReplicateHandlers, ReplicateStream, ReplicationTask, TaskResult } from '../../src/replication/link.js';
import { applyTasks } from '../../src/replication/receiver.js';
import { Replicator } from '../../src/replication/replicator.js';

/** A link whose peer is the test: it sees every batch and answers by hand. */
export class ManualLink implements PeerLink {
  readonly batches: { batchId: number; tasks: readonly ReplicationTask[] }[] = [];
  handlers: ReplicateHandlers | undefined;
  opened = 0;
  closed = false;
  /** What the dispatcher asked to hear about when the peer is reachable again. */
  reachable: (() => void) | undefined;

  onReachable(callback: () => void): () => void {
    this.reachable = callback;
    return () => {
      if (this.reachable === callback) this.reachable = undefined;
    };
  }

  constructor(readonly address = 'peer:1') {}

  replicate(handlers: ReplicateHandlers): ReplicateStream {
    this.handlers = handlers;
    this.opened++;
    return {
      send: (batchId, tasks) => this.batches.push({ batchId, tasks }),
      close: () => undefined,
    };
  }

  answer(batchId: number, results: readonly TaskResult[]): void {
    this.handlers!.onResults(batchId, results);
  }

  async digest(): Promise<PeerDigest> {
    throw new Error('not used');
  }

  async snapshot(): Promise<PeerSnapshot> {
    throw new Error('not used');
  }

  close(): void {
    this.closed = true;
  }
}

export interface SimNode {
  readonly address: string;
  readonly nodeId: string;
  readonly registry: Registry;
  readonly replicator: Replicator;
  up: boolean;
}

/**
 * An in-memory network of nodes on one fake clock. Every message takes `latencyMs` (or what
 * `latency()` says); a cut link or a down node fails streams and calls like a dead TCP link.
 */
export class SimNetwork {
  readonly clock = new FakeClock();
  readonly nodes = new Map<string, SimNode>();
  readonly #cuts = new Set<string>();
  readonly #streams = new Set<{ from: string; to: string; fail: (e: LinkError) => void }>();
  latency: () => number = () => 5;
  /** Answers `overloaded` to every task sent to these nodes. */
  readonly overloaded = new Set<string>();
  /** Probabilities per batch: lost (with a stream reset), applied twice, replayed 2 s later. */
  faults = { drop: 0, duplicate: 0, replay: 0 };
  /** The source of chance for faults; tests seed it for reproducible runs. */
  random: () => number = Math.random;

  chance(p: number): boolean {
    return p > 0 && this.random() < p;
  }

  addNode(address: string, peers: readonly string[] | (() => readonly string[]), options: { startupWaitMs?: number } = {}): SimNode {
    let replicator: Replicator | undefined;
    const registry = new Registry({ clock: this.clock, onLocalWrite: (w) => replicator!.publish(w), selfPreservation: false });
    replicator = new Replicator({
      nodeId: `node-${address}`,
      registry,
      clock: this.clock,
      connect: (to) => this.#link(address, to),
      resolvePeers: async () => (typeof peers === 'function' ? peers() : peers),
      antiEntropyIntervalMs: 10_000,
      startupWaitMs: options.startupWaitMs ?? 60_000,
      dispatcher: { random: () => 0.5 },
    });
    const node: SimNode = { address, nodeId: `node-${address}`, registry, replicator, up: true };
    this.nodes.set(address, node);
    return node;
  }

  node(address: string): SimNode {
    return this.nodes.get(address)!;
  }

  cut(a: string, b: string): void {
    this.#cuts.add(`${a}|${b}`).add(`${b}|${a}`);
    for (const s of [...this.#streams]) {
      if ((s.from === a && s.to === b) || (s.from === b && s.to === a)) s.fail({ kind: 'unavailable', message: 'link cut' });
    }
  }

  heal(a: string, b: string): void {
    this.#cuts.delete(`${a}|${b}`);
    this.#cuts.delete(`${b}|${a}`);
  }

  healAll(): void {
    this.#cuts.clear();
  }

  /** Lets time pass in small steps so promise continuations run between timers. */
  async run(ms: number, step = 5): Promise<void> {
    for (let t = 0; t < ms; t += step) {
      this.clock.advance(Math.min(step, ms - t));
      await flushMicrotasks();
    }
  }

  #reachable(from: string, to: string): boolean {
    const target = this.nodes.get(to);
    return !!target && target.up && !this.#cuts.has(`${from}|${to}`);
  }

  #later(fn: () => void): void {
    this.clock.setTimeout(fn, this.latency());
  }

  #link(from: string, to: string): PeerLink {
    const net = this;
    const call = <T>(fn: (target: SimNode) => T): Promise<T> =>
      new Promise((resolve, reject) => {
        net.#later(() => {
          if (!net.#reachable(from, to)) return reject(new Error('unreachable'));
          const value = fn(net.node(to));
          net.#later(() => (net.#reachable(from, to) ? resolve(value) : reject(new Error('unreachable'))));
        });
      });
    return {
      address: to,
      replicate(handlers: ReplicateHandlers): ReplicateStream {
        let open = true;
        const entry = {
          from,
          to,
          fail: (e: LinkError): void => {
            if (!open) return;
            open = false;
            net.#streams.delete(entry);
            handlers.onClose(e);
          },
        };
        net.#streams.add(entry);
        net.#later(() => {
          if (!net.#reachable(from, to)) entry.fail({ kind: 'unavailable', message: 'connect failed' });
          else if (open) handlers.onOpen();
        });
        return {
          send(batchId, tasks) {
            net.#later(() => {
              if (!open) return;
              if (!net.#reachable(from, to)) return entry.fail({ kind: 'unavailable', message: 'link broken' });
              // A lost batch is what a reset connection looks like: the stream fails, nothing is applied.
              if (net.chance(net.faults.drop)) return entry.fail({ kind: 'unavailable', message: 'batch lost' });
              const target = net.node(to).registry;
              const results: TaskResult[] = net.overloaded.has(to) ? tasks.map(() => ({ code: 'overloaded' })) : applyTasks(target, tasks);
              // Duplicates, now and much later (a retransmission racing a reconnect): replicated
              // writes must be idempotent and stale copies must lose.
              if (net.chance(net.faults.duplicate)) applyTasks(target, tasks);
              if (net.chance(net.faults.replay)) net.clock.setTimeout(() => net.node(to).up && applyTasks(target, tasks), 2_000);
              net.#later(() => {
                if (open && net.#reachable(from, to)) handlers.onResults(batchId, results);
              });
            });
          },
          close() {
            open = false;
            net.#streams.delete(entry);
          },
        };
      },
      digest: () => call((t) => ({ nodeId: t.nodeId, apps: t.registry.digest() })),
      snapshot: (apps) =>
        call((t) => ({
          nodeId: t.nodeId,
          records: t.registry.records(apps),
          tombstones: t.registry.tombstones().filter((x) => apps.length === 0 || apps.includes(x.app)),
        })),
      close: () => undefined,
    };
  }

  /** Takes a node off the network: its streams fail and calls to it are refused. */
  kill(address: string): void {
    this.node(address).up = false;
    for (const s of [...this.#streams]) if (s.to === address || s.from === address) s.fail({ kind: 'unavailable', message: 'node down' });
  }
}

export async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

/** Records of a node, comparable across nodes (node-local timestamps removed). */
export function contents(registry: Registry): unknown[] {
  return registry.snapshot().instances.map((v) => ({ ...recordFields(v.record), lastUpdatedTimestamp: 0 }));
}
