import type { Change } from './types.js';

/**
 * Slots the ring starts with; it doubles up to its capacity as changes come. A ring of the
 * default capacity (100,000) allocated whole was 800 KiB of an empty node's RSS.
 */
const INITIAL_SLOTS = 1024;

/**
 * The last `capacity` changes in a ring buffer, for GetDelta and Watch resumption.
 * Revisions are consecutive, so a lookup is arithmetic, not a search.
 */
export class ChangeLog {
  #ring: (Change | undefined)[];
  #start = 0;
  #length = 0;

  constructor(readonly capacity: number) {
    this.#ring = new Array<Change | undefined>(Math.min(capacity, INITIAL_SLOTS));
  }

  append(change: Change): void {
    // The ring only wraps once it holds `capacity` slots, so while it grows it starts at 0.
    if (this.#length === this.#ring.length && this.#length < this.capacity) this.#grow();
    const end = (this.#start + this.#length) % this.#ring.length;
    this.#ring[end] = change;
    if (this.#length < this.#ring.length) this.#length++;
    else this.#start = (this.#start + 1) % this.#ring.length;
  }

  /** The smallest `since` that {@link after} can answer completely. */
  oldestReplayable(currentRevision: number): number {
    if (this.#length === 0) return currentRevision;
    return this.#ring[this.#start]!.revision - 1;
  }

  /** Changes with revision > since, at most `max`; undefined when `since` is too old. */
  after(since: number, max: number, currentRevision: number): Change[] | undefined {
    if (since < this.oldestReplayable(currentRevision)) return undefined;
    if (this.#length === 0) return [];
    const first = this.#ring[this.#start]!.revision;
    const offset = Math.max(0, since + 1 - first);
    const out: Change[] = [];
    for (let i = offset; i < this.#length && out.length < max; i++) {
      out.push(this.#ring[(this.#start + i) % this.#ring.length]!);
    }
    return out;
  }

  #grow(): void {
    const ring = new Array<Change | undefined>(Math.min(this.capacity, this.#ring.length * 2));
    for (let i = 0; i < this.#length; i++) ring[i] = this.#ring[i];
    this.#ring = ring;
  }
}
