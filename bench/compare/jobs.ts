/**
 * What the comparison's coordinator asks its load processes to do (bench/compare/load-worker.ts),
 * and what they answer, over the fork IPC channel. Every job names the system it drives; the
 * same job against Roster and against etcd runs the same code around a different RPC.
 */
export type System = 'roster' | 'etcd';

/**
 * The keys a job renews or attaches writes to: for Roster, instances `prefix`-0 … -(size-1)
 * registered beforehand (bench/instances.ts's benchKey); for etcd, lease ids granted beforehand.
 */
export type Keys = { readonly system: 'roster'; readonly prefix: string; readonly size: number } | { readonly system: 'etcd'; readonly leases: readonly string[] };

export type Job =
  /**
   * Encodes a register or heartbeat job's requests and has the load process's replay child load
   * them, untimed; the job itself must follow (other jobs need no preparation). Answers a count:
   * `ok` requests encoded.
   */
  | { readonly type: 'prepare'; readonly job: Job }
  /**
   * Register distinct instances (etcd: Put under /registry/<app>/<id> with a pooled lease), `concurrency`
   * in flight, replayed by bench/replay: each request once, running out is a failure.
   */
  | { readonly type: 'register'; readonly system: System; readonly address: string; readonly concurrency: number; readonly durationMs: number; readonly prefix: string; readonly keys: Keys }
  /** Roster's unary Heartbeat over `keys`, `concurrency` in flight, replayed by bench/replay. */
  | { readonly type: 'heartbeat'; readonly address: string; readonly concurrency: number; readonly durationMs: number; readonly keys: Keys }
  /** Renewal streams (Roster Heartbeats / etcd LeaseKeepAlive), at most `window` renewals un-acknowledged per stream. */
  | {
      readonly type: 'renewals';
      readonly system: System;
      readonly address: string;
      readonly streams: number;
      readonly perMessage: number;
      readonly window: number;
      readonly durationMs: number;
      readonly keys: Keys;
    }
  /** Renewals paced at `perSecond` in total, spread over `addresses` (one stream each): background load. */
  | {
      readonly type: 'paced-renewals';
      readonly system: System;
      readonly addresses: readonly string[];
      readonly perSecond: number;
      readonly perMessage: number;
      readonly durationMs: number;
      readonly keys: Keys;
    }
  /** Open-loop writes at `perSecond` to `writeAddress`, each timed to its event on a watch at `watchAddress`. */
  | {
      readonly type: 'watch-latency';
      readonly system: System;
      readonly writeAddress: string;
      readonly watchAddress: string;
      readonly perSecond: number;
      readonly durationMs: number;
      readonly app: string;
      readonly keys: Keys;
    }
  /** Registers instances [from, to) of `prefix` (etcd: a lease of its own for each, then a Put), for size rows. */
  | { readonly type: 'fill'; readonly system: System; readonly address: string; readonly from: number; readonly to: number; readonly prefix: string; readonly concurrency: number }
  /** Grants `count` etcd leases. */
  | { readonly type: 'grant'; readonly address: string; readonly count: number; readonly concurrency: number }
  /** Reads the whole registry `times` times after one untimed read. */
  | { readonly type: 'full-read'; readonly system: System; readonly address: string; readonly decode: boolean; readonly expected: number; readonly times: number };

/** Successful operations in a timed loop. */
export interface CountResult {
  readonly ok: number;
  readonly failed: number;
  readonly seconds: number;
  /** Paced jobs: operations that fell due while too many were outstanding, so were not sent. */
  readonly skipped?: number;
  readonly firstError?: string;
  /** Replayed jobs: the replay child's CPU during the job (it is not in the load process's /proc stat). */
  readonly replayCpuSeconds?: number;
}

export interface WatchResult extends CountResult {
  /** Writes issued and, of those answered OK, the events seen. */
  readonly issued: number;
  readonly skipped: number;
  readonly events: number;
  /** Write sent → event received, ms, one per event. */
  readonly latenciesMs: readonly number[];
  /** Writes answered OK within the paced window, per second of it. */
  readonly sustainedPerSecond: number;
}

export interface ReadResult {
  readonly durationsMs: readonly number[];
  readonly bytes: number;
  readonly records: number;
  /** Decoded etcd reads only: of each read, the part spent decoding the values into Instances. */
  readonly valueDecodeMs?: readonly number[];
}

export type JobResult =
  | { readonly type: 'count'; readonly result: CountResult }
  | { readonly type: 'watch'; readonly result: WatchResult }
  | { readonly type: 'read'; readonly result: ReadResult }
  | { readonly type: 'leases'; readonly leases: readonly string[] };

export type WorkerRequest = { readonly id: number; readonly job: Job };
export type WorkerMessage = { readonly type: 'ready' } | { readonly id: number; readonly ok: true; readonly result: JobResult } | { readonly id: number; readonly ok: false; readonly error: string };
