import type { Change } from './types.js';

/**
 * The last `capacity` changes in a ring buffer, for GetDelta and Watch resumption.
 * Revisions are consecutive, so a lookup is arithmetic, not a search.
 */
export class ChangeLog {
  readonly #ring: (Change | undefined)[];
  #start = 0;
  #length = 0;

  constructor(readonly capacity: number) {
    this.#ring = new Array<Change | undefined>(capacity);
  }

  append(change: Change): void {
    const end = (this.#start + this.#length) % this.capacity;
    this.#ring[end] = change;
    if (this.#length < this.capacity) this.#length++;
    else this.#start = (this.#start + 1) % this.capacity;
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
      out.push(this.#ring[(this.#start + i) % this.capacity]!);
    }
    return out;
  }
}
