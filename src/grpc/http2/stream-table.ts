/**
 * A connection's open streams by id: open addressing over the ids' halves (client stream ids
 * are odd and increasing, so consecutive ones take consecutive slots), deletion by shifting
 * the run back, doubling when half full and never shrinking (a connection's peak concurrency
 * bounds it). A `Map` with streams coming and going rehashed its insertion-ordered table every
 * few streams, and once the connection was old each new table was allocated in V8's old
 * generation: garbage per request that only a major GC frees.
 */
export class StreamTable<T> {
  /** Slot → stream id, 0 when empty (stream ids start at 1). */
  #ids: Uint32Array;
  #values: (T | undefined)[];
  #size = 0;

  constructor(capacity = 16) {
    const slots = 2 ** Math.ceil(Math.log2(Math.max(capacity, 2)));
    this.#ids = new Uint32Array(slots);
    this.#values = new Array<T | undefined>(slots).fill(undefined);
  }

  get size(): number {
    return this.#size;
  }

  get(id: number): T | undefined {
    if (!(id >= 1)) return undefined; // 0 marks an empty slot
    const mask = this.#ids.length - 1;
    for (let slot = this.#home(id); ; slot = (slot + 1) & mask) {
      const at = this.#ids[slot]!;
      if (at === id) return this.#values[slot];
      if (at === 0) return undefined;
    }
  }

  /** Adds or replaces the stream of `id` (a positive integer). */
  set(id: number, value: T): void {
    if (!(id >= 1 && id <= 0x7fffffff && Number.isInteger(id))) throw new RangeError(`stream id ${id}: 1 to 2^31-1`);
    if ((this.#size + 1) * 2 > this.#ids.length) this.#grow();
    const mask = this.#ids.length - 1;
    for (let slot = this.#home(id); ; slot = (slot + 1) & mask) {
      const at = this.#ids[slot]!;
      if (at === id || at === 0) {
        if (at === 0) this.#size++;
        this.#ids[slot] = id;
        this.#values[slot] = value;
        return;
      }
    }
  }

  delete(id: number): boolean {
    if (!(id >= 1)) return false;
    const mask = this.#ids.length - 1;
    let slot = this.#home(id);
    while (this.#ids[slot] !== id) {
      if (this.#ids[slot] === 0) return false;
      slot = (slot + 1) & mask;
    }
    // Shift the rest of the run back over the hole, so that every lookup still finds its id
    // before an empty slot.
    for (let next = (slot + 1) & mask; this.#ids[next] !== 0; next = (next + 1) & mask) {
      const home = this.#home(this.#ids[next]!);
      // The entry at `next` may move to `slot` unless its home lies cyclically in (slot, next].
      const stays = slot <= next ? slot < home && home <= next : slot < home || home <= next;
      if (stays) continue;
      this.#ids[slot] = this.#ids[next]!;
      this.#values[slot] = this.#values[next];
      slot = next;
    }
    this.#ids[slot] = 0;
    this.#values[slot] = undefined;
    this.#size--;
    return true;
  }

  /** The streams now, as an array: the caller may open or close streams while it goes through it. */
  values(): T[] {
    const out: T[] = [];
    for (let slot = 0; slot < this.#ids.length; slot++) if (this.#ids[slot] !== 0) out.push(this.#values[slot]!);
    return out;
  }

  #home(id: number): number {
    return (id >>> 1) & (this.#ids.length - 1);
  }

  #grow(): void {
    const ids = this.#ids;
    const values = this.#values;
    this.#ids = new Uint32Array(ids.length * 2);
    this.#values = new Array<T | undefined>(ids.length * 2).fill(undefined);
    this.#size = 0;
    for (let slot = 0; slot < ids.length; slot++) if (ids[slot] !== 0) this.set(ids[slot]!, values[slot]!);
  }
}
