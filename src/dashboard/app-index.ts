import { STATUSES, type Change, type InstanceStatus, type InstanceView, type RegistryApi } from '../core/types.js';

/** Counts per status, every status present (zeros included) so the UI needs no defaults. */
export type StatusCounts = Record<InstanceStatus, number>;

/** One application as the dashboard lists it. */
export interface AppSummary {
  readonly app: string;
  readonly count: number;
  readonly byStatus: StatusCounts;
  /** Instances per zone; the empty zone is reported as "". */
  readonly byZone: Readonly<Record<string, number>>;
}

/** The whole registry as the apps page shows it. */
export interface RegistryTotals {
  readonly apps: number;
  readonly instances: number;
  readonly byStatus: StatusCounts;
  readonly byZone: Readonly<Record<string, number>>;
}

export const emptyCounts = (): StatusCounts => ({ UP: 0, DOWN: 0, STARTING: 0, OUT_OF_SERVICE: 0, UNKNOWN: 0 });

/**
 * The dashboard's view of which applications exist, kept from the registry's change feed so
 * that listing 500 apps does not walk 100k instances. Membership is exact (ADDED and DELETED
 * are the only changes that add or remove an instance); an app's counts are recomputed from
 * the registry only when it changed since it was last shown, so each read stays cheap while
 * the feed costs a set insertion per change.
 */
export class AppIndex {
  readonly #registry: RegistryApi;
  /** Live instances per app: an app leaves the index when this reaches 0. */
  readonly #sizes = new Map<string, number>();
  readonly #summaries = new Map<string, AppSummary>();
  #sorted: string[] | undefined;
  #totals: RegistryTotals | undefined;

  constructor(registry: RegistryApi) {
    this.#registry = registry;
    for (const view of registry.snapshot().instances) this.#add(view.record.app, 1);
  }

  /** Feed one change (subscribe the index to the registry before anything else reads it). */
  apply(change: Change): void {
    const app = change.instance.record.app;
    if (change.type === 'ADDED') this.#add(app, 1);
    else if (change.type === 'DELETED') this.#add(app, -1);
    this.#summaries.delete(app);
    this.#totals = undefined;
  }

  get size(): number {
    return this.#sizes.size;
  }

  /** App names in order, those containing `query` (case-insensitive) when given. */
  names(query = ''): string[] {
    this.#sorted ??= [...this.#sizes.keys()].sort();
    if (query === '') return this.#sorted;
    const q = query.toLowerCase();
    return this.#sorted.filter((name) => name.includes(q));
  }

  summary(app: string): AppSummary {
    let summary = this.#summaries.get(app);
    if (summary === undefined) {
      summary = summarise(app, this.#registry.getApplication(app).instances);
      if (this.#sizes.has(app)) this.#summaries.set(app, summary);
    }
    return summary;
  }

  /**
   * Counts over the whole registry, summed from the apps' summaries and kept until the next
   * change: the apps page never asks the registry for its statistics (an O(n) call at 100k).
   */
  totals(): RegistryTotals {
    if (this.#totals === undefined) {
      const byStatus = emptyCounts();
      const byZone: Record<string, number> = {};
      let instances = 0;
      for (const app of this.#sizes.keys()) {
        const summary = this.summary(app);
        instances += summary.count;
        for (const status of STATUSES) byStatus[status] += summary.byStatus[status];
        for (const [zone, n] of Object.entries(summary.byZone)) byZone[zone] = (byZone[zone] ?? 0) + n;
      }
      this.#totals = { apps: this.#sizes.size, instances, byStatus, byZone };
    }
    return this.#totals;
  }

  #add(app: string, delta: 1 | -1): void {
    const next = (this.#sizes.get(app) ?? 0) + delta;
    if (next > 0) {
      if (!this.#sizes.has(app)) this.#sorted = undefined;
      this.#sizes.set(app, next);
    } else {
      this.#sizes.delete(app);
      this.#summaries.delete(app);
      this.#sorted = undefined;
    }
  }
}

/** Counts of a list of instances by status and by zone. */
export function summarise(app: string, instances: readonly InstanceView[]): AppSummary {
  const byStatus = emptyCounts();
  const byZone: Record<string, number> = {};
  for (const { record } of instances) {
    byStatus[record.status]++;
    byZone[record.zone] = (byZone[record.zone] ?? 0) + 1;
  }
  return { app, count: instances.length, byStatus, byZone };
}
