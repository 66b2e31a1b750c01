import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Registry } from '../core/registry.js';
import type { LocalWrite } from '../core/types.js';
import { PeerDispatcher, type DispatcherOptions, type DispatcherStats } from './dispatcher.js';
import type { PeerLink, PeerSnapshot, ReplicationTask } from './link.js';

export interface ReplicatorOptions {
  nodeId: string;
  registry: Registry;
  clock: Clock;
  logger?: Logger;
  /** Makes the link to one peer address (gRPC in production, in-memory in tests). */
  connect: (address: string) => PeerLink;
  /** The current peer addresses: a static list, or a DNS name resolved again on every call. */
  resolvePeers: () => Promise<readonly string[]>;
  /** Addresses known to be this node, skipped without dialling. */
  selfAddresses?: readonly string[];
  peerRefreshMs?: number;
  antiEntropyIntervalMs?: number;
  /** How long reads wait for a first peer snapshot before serving anyway (default 5 min). */
  startupWaitMs?: number;
  /** Called once, when the start-up sync is over and reads may be served. */
  onReady?: () => void;
  startupRetryMs?: number;
  dispatcher?: Partial<DispatcherOptions>;
}

/** One peer as `roster peers` shows it. */
export interface PeerStatus extends DispatcherStats {
  readonly lastReconcileAt: number | undefined;
}

/** What a node's admin port answers on /peers (JSON). */
export interface PeersReport {
  readonly nodeId: string;
  /** Start-up sync is over (see {@link Replicator.ready}). */
  readonly ready: boolean;
  readonly peers: readonly PeerStatus[];
}

interface Peer {
  readonly dispatcher: PeerDispatcher;
  reconciling: boolean;
  lastReconcileAt: number | undefined;
}

/**
 * Keeps one dispatcher per peer, fans local writes out to them, syncs from a peer snapshot
 * at start-up, and runs anti-entropy (digest exchange, then pull of the apps that differ)
 * periodically and whenever a stream (re)opens.
 */
export class Replicator {
  readonly #opts: ReplicatorOptions;
  readonly #log: Logger | undefined;
  readonly #peers = new Map<string, Peer>();
  readonly #self = new Set<string>();
  readonly #timers = new Set<TimerHandle>();
  #ready = false;
  #stopped = false;

  constructor(options: ReplicatorOptions) {
    this.#opts = options;
    this.#log = options.logger?.child({ component: 'replication' });
    for (const address of options.selfAddresses ?? []) this.#self.add(address);
  }

  /** False until a peer snapshot was applied, there are no peers, or the start-up wait ran out. */
  get ready(): boolean {
    return this.#ready;
  }

  /** Hands a client write to every peer. Replicated writes never reach here. */
  publish(write: LocalWrite): void {
    if (this.#peers.size === 0) return;
    const originTimestamp = this.#opts.clock.wallNow();
    const task: ReplicationTask = { ...write, originTimestamp };
    for (const peer of this.#peers.values()) peer.dispatcher.enqueue(task);
  }

  async start(): Promise<void> {
    await this.refreshPeers();
    this.#every(this.#opts.peerRefreshMs ?? 30_000, () => void this.refreshPeers());
    this.#every(this.#opts.antiEntropyIntervalMs ?? 30_000, () => {
      for (const address of this.#peers.keys()) void this.reconcile(address);
    });
    void this.#startupSync();
  }

  /** Dials new peers and shuts down removed ones. */
  async refreshPeers(): Promise<void> {
    let addresses: readonly string[];
    try {
      addresses = await this.#opts.resolvePeers();
    } catch (err) {
      this.#log?.warn({ err }, 'peer resolution failed; keeping the current peers');
      return;
    }
    if (this.#stopped) return;
    const wanted = new Set(addresses.filter((a) => !this.#self.has(a)));
    for (const [address, peer] of this.#peers) {
      if (wanted.has(address)) continue;
      peer.dispatcher.stop();
      this.#peers.delete(address);
      this.#log?.info({ peer: address }, 'peer removed');
    }
    for (const address of wanted) {
      if (this.#peers.has(address)) continue;
      const dispatcher = new PeerDispatcher(this.#opts.connect(address), this.#opts.registry, this.#opts.clock, this.#opts.dispatcher, this.#opts.logger, () => void this.reconcile(address));
      this.#peers.set(address, { dispatcher, reconciling: false, lastReconcileAt: undefined });
      dispatcher.start();
      this.#log?.info({ peer: address }, 'peer added');
    }
  }

  /**
   * Anti-entropy with one peer: compare per-app digests and pull the apps that differ,
   * merging by the usual version rules (tombstones keep cancelled instances dead).
   */
  async reconcile(address: string): Promise<number> {
    const peer = this.#peers.get(address);
    if (!peer || peer.reconciling) return 0;
    peer.reconciling = true;
    try {
      const remote = await peer.dispatcher.link.digest();
      if (this.#isSelf(address, remote.nodeId)) return 0;
      const local = this.#opts.registry.digest();
      const differing = new Set<string>();
      for (const [app, d] of remote.apps) if (local.get(app)?.hash !== d.hash) differing.add(app);
      for (const app of local.keys()) if (!remote.apps.has(app)) differing.add(app);
      peer.lastReconcileAt = this.#opts.clock.wallNow();
      if (differing.size === 0) return 0;
      const applied = this.#apply(await peer.dispatcher.link.snapshot([...differing]));
      this.#log?.debug({ peer: address, apps: differing.size, applied }, 'anti-entropy pulled differing apps');
      return applied;
    } catch (err) {
      this.#log?.debug({ peer: address, err }, 'anti-entropy round failed');
      return 0;
    } finally {
      peer.reconciling = false;
    }
  }

  peers(): PeerStatus[] {
    return [...this.#peers.values()].map((p) => ({ ...p.dispatcher.stats(), lastReconcileAt: p.lastReconcileAt }));
  }

  /** Waits (bounded) for queued tasks to reach the peers, then closes every stream. */
  async stop(graceMs = 2_000): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) this.#opts.clock.clearTimeout(t);
    this.#timers.clear();
    const dispatchers = [...this.#peers.values()].map((p) => p.dispatcher);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(dispatchers.map((d) => d.drained())), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    for (const d of dispatchers) d.stop();
    this.#peers.clear();
  }

  async #startupSync(): Promise<void> {
    const { clock } = this.#opts;
    const deadline = clock.now() + (this.#opts.startupWaitMs ?? 5 * 60_000);
    for (let round = 0; !this.#stopped; round++) {
      if (this.#peers.size === 0) {
        this.#markReady('no peers');
        return;
      }
      for (const [address, peer] of this.#peers) {
        try {
          const snapshot = await peer.dispatcher.link.snapshot([]);
          if (this.#isSelf(address, snapshot.nodeId)) continue;
          const applied = this.#apply(snapshot);
          this.#markReady('peer snapshot applied', { peer: address, applied });
          return;
        } catch (err) {
          this.#log?.debug({ peer: address, err, round }, 'start-up snapshot failed');
        }
      }
      if (clock.now() >= deadline) {
        this.#markReady('no peer answered within the start-up wait; serving what we have');
        return;
      }
      await new Promise<void>((resolve) => this.#after(this.#opts.startupRetryMs ?? 1_000, resolve));
    }
  }

  #apply(snapshot: PeerSnapshot): number {
    const registry = this.#opts.registry;
    for (const t of snapshot.tombstones) registry.applyTombstone(t);
    let applied = 0;
    for (const { record, leaseRemainingMs } of snapshot.records) {
      if (registry.applyRecord(record, leaseRemainingMs) === 'applied') applied++;
    }
    return applied;
  }

  /** A peer that answers with our own node id is us (e.g. our own address in a DNS answer). */
  #isSelf(address: string, nodeId: string): boolean {
    if (nodeId !== this.#opts.nodeId) return false;
    this.#self.add(address);
    const peer = this.#peers.get(address);
    if (peer) {
      peer.dispatcher.stop();
      this.#peers.delete(address);
      this.#log?.info({ peer: address }, 'peer is this node; skipping it');
    }
    return true;
  }

  #markReady(reason: string, fields: Record<string, unknown> = {}): void {
    if (this.#ready) return;
    this.#ready = true;
    this.#log?.info({ ...fields, reason }, 'ready to serve reads');
    this.#opts.onReady?.();
  }

  #every(ms: number, fn: () => void): void {
    const loop = (): void => {
      this.#timers.delete(handle);
      if (this.#stopped) return;
      fn();
      handle = this.#opts.clock.setTimeout(loop, ms);
      this.#timers.add(handle);
    };
    let handle = this.#opts.clock.setTimeout(loop, ms);
    this.#timers.add(handle);
  }

  #after(ms: number, fn: () => void): void {
    const handle = this.#opts.clock.setTimeout(() => {
      this.#timers.delete(handle);
      fn();
    }, ms);
    this.#timers.add(handle);
  }
}
