import { PagedColumn } from './paged-column.js';

/**
 * Node-local lease state of every registered instance, in typed-array columns indexed by a
 * slot number, with the min-heap of deadlines over slots (etcd's lease_queue.go: a heap by
 * deadline plus an index by id, updated in place). At a million instances an object per lease
 * with its boxed numbers was seven heap objects and ~220 bytes per instance for the garbage
 * collector to trace on every major GC; here a lease is ~60 bytes of columns the collector
 * never looks into, plus the owner pointer. Slots are reused after {@link free}; `owner` maps
 * a slot back to its instance. The heap's three columns (deadline, heap position, heap) double
 * when full, 16 bytes a slot; the others grow a page at a time and are never copied (see
 * {@link PagedColumn}): doubling all of them copied ~60 MB in one call at 2^19 slots, a 33 ms
 * stall, and a paged heap made each renewal ~20 % slower.
 */
export class LeaseTable<Owner> {
  #capacity = 0;
  #deadline = new Float64Array(0);
  /** Position of the slot in the heap, -1 when not in it. */
  #heapIndex = new Int32Array(0);
  readonly #registrationTimestamp = new PagedColumn<number>((n) => new Float64Array(n));
  readonly #lastRenewalTimestamp = new PagedColumn<number>((n) => new Float64Array(n));
  readonly #serviceUpTimestamp = new PagedColumn<number>((n) => new Float64Array(n));
  /** The owner's content hash (53 bits: a boxed number on the heap if kept on the owner). */
  readonly #hash = new PagedColumn<number>((n) => new Float64Array(n));
  readonly #owners = new PagedColumn<Owner | undefined>((n) => new Array<Owner | undefined>(n).fill(undefined));
  /** The peer whose replicated write last renewed a slot; absent when a client did (most slots). */
  readonly #renewedVia = new Map<number, string>();
  /** Slots by deadline: heap[0] has the earliest. */
  #heap = new Int32Array(0);
  #heapSize = 0;
  #free: number[] = [];
  #used = 0;

  /** Slots in use. */
  get size(): number {
    return this.#used - this.#free.length;
  }

  /** A new slot, out of the heap until {@link setDeadline}; timestamps 0; its owner set next. */
  allocate(): number {
    let slot = this.#free.pop();
    if (slot === undefined) {
      if (this.#used === this.#capacity) this.#grow();
      slot = this.#used++;
      if (slot >= this.#hash.capacity) for (const column of [this.#registrationTimestamp, this.#lastRenewalTimestamp, this.#serviceUpTimestamp, this.#hash, this.#owners]) column.ensure(slot);
    }
    this.#deadline[slot] = 0;
    this.#heapIndex[slot] = -1;
    this.#registrationTimestamp.set(slot, 0);
    this.#lastRenewalTimestamp.set(slot, 0);
    this.#serviceUpTimestamp.set(slot, 0);
    return slot;
  }

  /** Leaves the heap and frees the slot for reuse. */
  free(slot: number): void {
    this.#removeFromHeap(slot);
    this.#owners.set(slot, undefined);
    this.#renewedVia.delete(slot);
    this.#free.push(slot);
  }

  owner(slot: number): Owner {
    return this.#owners.get(slot)!;
  }

  setOwner(slot: number, owner: Owner): void {
    this.#owners.set(slot, owner);
  }

  deadline(slot: number): number {
    return this.#deadline[slot]!;
  }

  /** Whether the slot is in the heap (live and not removed). */
  scheduled(slot: number): boolean {
    return this.#heapIndex[slot]! >= 0;
  }

  /** Puts the slot in the heap at `deadline`, or moves it there. */
  setDeadline(slot: number, deadline: number): void {
    const old = this.#deadline[slot]!;
    this.#deadline[slot] = deadline;
    const i = this.#heapIndex[slot]!;
    if (i < 0) {
      this.#place(this.#heapSize, slot);
      this.#heapSize++;
      this.#up(this.#heapSize - 1);
    } else if (deadline < old) this.#up(i);
    else this.#down(i);
  }

  /**
   * Every slot whose deadline is at or before `now`, in no particular order, leaving them in the
   * heap: O(due), since due slots form the top of the heap (a child is never due before its parent).
   */
  collectDue(now: number): number[] {
    const due: number[] = [];
    const pending: number[] = this.#heapSize > 0 ? [0] : [];
    while (pending.length > 0) {
      const i = pending.pop()!;
      const slot = this.#heap[i]!;
      if (this.#deadline[slot]! > now) continue;
      due.push(slot);
      const l = 2 * i + 1;
      if (l < this.#heapSize) pending.push(l);
      if (l + 1 < this.#heapSize) pending.push(l + 1);
    }
    return due;
  }

  /** The earliest deadline in the heap, or undefined when it is empty. */
  earliest(): number | undefined {
    return this.#heapSize > 0 ? this.#deadline[this.#heap[0]!] : undefined;
  }

  registrationTimestamp(slot: number): number {
    return this.#registrationTimestamp.get(slot);
  }

  lastRenewalTimestamp(slot: number): number {
    return this.#lastRenewalTimestamp.get(slot);
  }

  serviceUpTimestamp(slot: number): number {
    return this.#serviceUpTimestamp.get(slot);
  }

  setRegistrationTimestamp(slot: number, wall: number): void {
    this.#registrationTimestamp.set(slot, wall);
  }

  setLastRenewalTimestamp(slot: number, wall: number): void {
    this.#lastRenewalTimestamp.set(slot, wall);
  }

  setServiceUpTimestamp(slot: number, wall: number): void {
    this.#serviceUpTimestamp.set(slot, wall);
  }

  hash(slot: number): number {
    return this.#hash.get(slot);
  }

  setHash(slot: number, hash: number): void {
    this.#hash.set(slot, hash);
  }

  renewedVia(slot: number): string | undefined {
    return this.#renewedVia.get(slot);
  }

  setRenewedVia(slot: number, peer: string | undefined): void {
    if (peer === undefined) this.#renewedVia.delete(slot);
    else this.#renewedVia.set(slot, peer);
  }

  #removeFromHeap(slot: number): void {
    const i = this.#heapIndex[slot]!;
    if (i < 0) return;
    const last = --this.#heapSize;
    this.#heapIndex[slot] = -1;
    if (i === last) return;
    const moved = this.#heap[last]!;
    this.#place(i, moved);
    this.#up(i);
    this.#down(this.#heapIndex[moved]!);
  }

  #place(i: number, slot: number): void {
    this.#heap[i] = slot;
    this.#heapIndex[slot] = i;
  }

  #up(i: number): void {
    const slot = this.#heap[i]!;
    const d = this.#deadline[slot]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = this.#heap[parent]!;
      if (this.#deadline[p]! <= d) break;
      this.#place(i, p);
      i = parent;
    }
    this.#place(i, slot);
  }

  #down(i: number): void {
    const n = this.#heapSize;
    const slot = this.#heap[i]!;
    const d = this.#deadline[slot]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let child = l;
      if (r < n && this.#deadline[this.#heap[r]!]! < this.#deadline[this.#heap[l]!]!) child = r;
      if (this.#deadline[this.#heap[child]!]! >= d) break;
      this.#place(i, this.#heap[child]!);
      i = child;
    }
    this.#place(i, slot);
  }

  /** Doubles the heap's columns (from 1,024): amortised O(1) per slot. */
  #grow(): void {
    const capacity = Math.max(1024, this.#capacity * 2);
    const grown = <T extends Float64Array | Int32Array>(old: T, make: (n: number) => T): T => {
      const next = make(capacity);
      next.set(old);
      return next;
    };
    this.#deadline = grown(this.#deadline, (n) => new Float64Array(n));
    this.#heapIndex = grown(this.#heapIndex, (n) => new Int32Array(n));
    this.#heap = grown(this.#heap, (n) => new Int32Array(n));
    this.#capacity = capacity;
  }
}
