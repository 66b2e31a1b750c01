/**
 * Each app's items (a registry's entries) in instance-id order, for the reads that list them
 * (ListApplications, snapshots, VIP lists). A snapshot copies these lists instead of sorting a
 * million ids and looking each up (220-270 ms at 1M: a stall of every full read).
 *
 * Writes keep them cheaply: a new instance joins its app's unsorted arrivals (a push), which
 * the next read of the app sorts and merges in; a new version replaces the old one in place;
 * a removal is a binary search and a splice. Keeping the list sorted on every arrival was a
 * binary search over id strings and a splice per Register, ~7 % of its registry work, for
 * lists most often read once a revision, if at all. An app's list is dropped (sorted whole
 * on its next read) when it grows past {@link KEEP_SORTED_MAX} through arrivals, or when a
 * removal or replacement finds it out of step.
 */
export class IdOrder<T> {
  readonly #byApp = new Map<string, AppList<T>>();
  /**
   * Sorted lists lent to readers: an app's next write copies its list before changing it, so
   * lending costs one step per app instead of copying every item (~30 ms at 1M, a stall of
   * every full read), and a reader walks it while writes go on. Arrivals are never lent.
   */
  readonly #lent = new Set<T[]>();

  /**
   * @param idOf an item's instance id
   * @param itemsOf an app's items in any order, to sort a dropped list on its next read
   */
  constructor(
    readonly idOf: (item: T) => string,
    readonly itemsOf: (app: string) => Iterable<T>,
  ) {}

  /** A new app: its list starts empty and is kept from here on. */
  start(app: string): void {
    this.#byApp.set(app, { sorted: [], arrivals: [] });
  }

  /** An app's last item went: its list goes too. */
  forget(app: string): void {
    const list = this.#byApp.get(app);
    if (list === undefined) return;
    this.#lent.delete(list.sorted);
    this.#byApp.delete(app);
  }

  /** A new instance of `app`. */
  added(app: string, item: T): void {
    const list = this.#byApp.get(app);
    if (list === undefined) return;
    if (list.sorted.length + list.arrivals.length >= KEEP_SORTED_MAX) return this.forget(app);
    list.arrivals.push(item);
  }

  /** A new version of an instance (`next` has `previous`'s id). */
  replaced(app: string, previous: T, next: T): void {
    this.#change(app, previous, next);
  }

  /** An instance left `app`. */
  removed(app: string, item: T): void {
    this.#change(app, item, undefined);
  }

  /** The app's items in id order (the app must have some). Not to be modified or held across writes: see {@link lend}. */
  sorted(app: string): readonly T[] {
    let list = this.#byApp.get(app);
    if (list === undefined) {
      list = { sorted: [...this.itemsOf(app)].sort(this.#byId), arrivals: [] };
      this.#byApp.set(app, list);
    } else if (list.arrivals.length > 0) {
      // A new array: the old one may be lent.
      list.sorted = merge(list.sorted, list.arrivals.sort(this.#byId), this.#byId);
      list.arrivals = [];
    }
    return list.sorted;
  }

  /** The same as {@link sorted}, for a reader that walks it while writes go on (a snapshot). */
  lend(app: string): readonly T[] {
    const sorted = this.sorted(app) as T[];
    this.#lent.add(sorted);
    return sorted;
  }

  /** `previous` replaced by `next`, or removed when `next` is undefined; the list is dropped when `previous` is not in it. */
  #change(app: string, previous: T, next: T | undefined): void {
    const list = this.#byApp.get(app);
    if (list === undefined) return;
    const at = list.arrivals.indexOf(previous);
    if (at >= 0) {
      if (next !== undefined) list.arrivals[at] = next;
      else list.arrivals.splice(at, 1);
      return;
    }
    const id = this.idOf(previous);
    let sorted = list.sorted;
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.idOf(sorted[mid]!) < id) lo = mid + 1;
      else hi = mid;
    }
    if (sorted[lo] !== previous) return this.forget(app);
    if (this.#lent.delete(sorted)) list.sorted = sorted = sorted.slice();
    if (next !== undefined) sorted[lo] = next;
    else sorted.splice(lo, 1);
  }

  readonly #byId = (a: T, b: T): number => {
    const x = this.idOf(a);
    const y = this.idOf(b);
    return x < y ? -1 : x > y ? 1 : 0;
  };
}

/** An app's list: `sorted` in id order, `arrivals` (new instances since its last read) in none. */
interface AppList<T> {
  sorted: T[];
  arrivals: T[];
}

/**
 * Apps up to this size keep their list through instances coming and going; larger ones sort
 * on read. It also bounds the arrivals a replacement or removal searches (an `indexOf`).
 */
const KEEP_SORTED_MAX = 4096;

/** Two sorted arrays merged into a new one. */
function merge<T>(a: readonly T[], b: readonly T[], order: (x: T, y: T) => number): T[] {
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) out.push(order(a[i]!, b[j]!) <= 0 ? a[i++]! : b[j++]!);
  while (i < a.length) out.push(a[i++]!);
  while (j < b.length) out.push(b[j++]!);
  return out;
}
