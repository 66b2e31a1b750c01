/**
 * A min-heap of lease deadlines with an index by key, so a renewal moves its entry in place
 * (O(log n)) instead of piling up stale copies (etcd's lease_queue.go does the same).
 */
export class LeaseHeap {
  readonly #keys: string[] = [];
  readonly #deadlines: number[] = [];
  readonly #index = new Map<string, number>();

  get size(): number {
    return this.#keys.length;
  }

  /** Inserts `key` or moves it to its new deadline. */
  set(key: string, deadline: number): void {
    const i = this.#index.get(key);
    if (i === undefined) {
      this.#keys.push(key);
      this.#deadlines.push(deadline);
      this.#index.set(key, this.#keys.length - 1);
      this.#up(this.#keys.length - 1);
      return;
    }
    const old = this.#deadlines[i]!;
    this.#deadlines[i] = deadline;
    if (deadline < old) this.#up(i);
    else this.#down(i);
  }

  delete(key: string): boolean {
    const i = this.#index.get(key);
    if (i === undefined) return false;
    const last = this.#keys.length - 1;
    this.#swap(i, last);
    this.#keys.pop();
    this.#deadlines.pop();
    this.#index.delete(key);
    if (i < last) {
      this.#up(i);
      this.#down(i);
    }
    return true;
  }

  deadline(key: string): number | undefined {
    const i = this.#index.get(key);
    return i === undefined ? undefined : this.#deadlines[i];
  }

  peek(): { key: string; deadline: number } | undefined {
    return this.#keys.length === 0 ? undefined : { key: this.#keys[0]!, deadline: this.#deadlines[0]! };
  }

  /** Removes and returns every key whose deadline is at or before `now`, earliest first. */
  popDue(now: number): string[] {
    const due: string[] = [];
    while (this.#keys.length > 0 && this.#deadlines[0]! <= now) {
      const key = this.#keys[0]!;
      this.delete(key);
      due.push(key);
    }
    return due;
  }

  #up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#deadlines[parent]! <= this.#deadlines[i]!) return;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #down(i: number): void {
    const n = this.#keys.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < n && this.#deadlines[l]! < this.#deadlines[min]!) min = l;
      if (r < n && this.#deadlines[r]! < this.#deadlines[min]!) min = r;
      if (min === i) return;
      this.#swap(i, min);
      i = min;
    }
  }

  #swap(a: number, b: number): void {
    if (a === b) return;
    const ka = this.#keys[a]!;
    const kb = this.#keys[b]!;
    this.#keys[a] = kb;
    this.#keys[b] = ka;
    const da = this.#deadlines[a]!;
    this.#deadlines[a] = this.#deadlines[b]!;
    this.#deadlines[b] = da;
    this.#index.set(kb, a);
    this.#index.set(ka, b);
  }
}
