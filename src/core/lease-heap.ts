/** Something with a deadline that a {@link LeaseHeap} can hold; the heap keeps `heapIndex` current. */
export interface HeapItem {
  deadline: number;
  /** Position in the heap, -1 when not in it. Owned by the heap. */
  heapIndex: number;
}

/**
 * A min-heap of lease deadlines. Items carry their own index (etcd's lease_queue.go keeps an
 * index by id; here it lives on the item), so a renewal moves an item in place in O(log n)
 * without a side map or stale copies.
 */
export class LeaseHeap<T extends HeapItem> {
  readonly #items: T[] = [];

  get size(): number {
    return this.#items.length;
  }

  /** Inserts `item` or moves it to its new deadline. */
  set(item: T, deadline: number): void {
    const old = item.deadline;
    item.deadline = deadline;
    if (item.heapIndex < 0) {
      item.heapIndex = this.#items.length;
      this.#items.push(item);
      this.#up(item.heapIndex);
    } else if (deadline < old) this.#up(item.heapIndex);
    else this.#down(item.heapIndex);
  }

  delete(item: T): boolean {
    const i = item.heapIndex;
    if (i < 0) return false;
    const last = this.#items.length - 1;
    this.#swap(i, last);
    this.#items.pop();
    item.heapIndex = -1;
    if (i < last) {
      this.#up(i);
      this.#down(i);
    }
    return true;
  }

  peek(): T | undefined {
    return this.#items[0];
  }

  /**
   * Every item whose deadline is at or before `now`, in no particular order, without removing
   * any: O(due), since due items form the top of the heap (a child is never due before its parent).
   */
  collectDue(now: number): T[] {
    const due: T[] = [];
    const pending: number[] = this.#items.length > 0 ? [0] : [];
    while (pending.length > 0) {
      const i = pending.pop()!;
      const item = this.#items[i]!;
      if (item.deadline > now) continue;
      due.push(item);
      const l = 2 * i + 1;
      if (l < this.#items.length) pending.push(l);
      if (l + 1 < this.#items.length) pending.push(l + 1);
    }
    return due;
  }

  #up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#items[parent]!.deadline <= this.#items[i]!.deadline) return;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #down(i: number): void {
    const n = this.#items.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < n && this.#items[l]!.deadline < this.#items[min]!.deadline) min = l;
      if (r < n && this.#items[r]!.deadline < this.#items[min]!.deadline) min = r;
      if (min === i) return;
      this.#swap(i, min);
      i = min;
    }
  }

  #swap(a: number, b: number): void {
    if (a === b) return;
    const x = this.#items[a]!;
    const y = this.#items[b]!;
    this.#items[a] = y;
    this.#items[b] = x;
    y.heapIndex = a;
    x.heapIndex = b;
  }
}
