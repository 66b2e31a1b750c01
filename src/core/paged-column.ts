/** Entries per page: 4,096 make 32 KiB pages of a float column. */
const PAGE_BITS = 12;
const PAGE_SIZE = 1 << PAGE_BITS;
const PAGE_MASK = PAGE_SIZE - 1;

/** A page: a typed array for numbers, a plain array for references. */
type Page<V> = { [index: number]: V };

/**
 * A column indexed from 0 that grows a page at a time and is never copied. Doubling a
 * contiguous array copied megabytes in one turn at half a million instances (a 30-40 ms stall
 * on the event loop); adding a page costs microseconds at any size.
 */
export class PagedColumn<V> {
  readonly #pages: Page<V>[] = [];
  readonly #make: (length: number) => Page<V>;

  /** `make` returns a page of the given length, every entry at its initial value (0, undefined). */
  constructor(make: (length: number) => Page<V>) {
    this.#make = make;
  }

  /** Entries the column holds (a multiple of the page size). */
  get capacity(): number {
    return this.#pages.length * PAGE_SIZE;
  }

  /** Adds pages until `index` fits. */
  ensure(index: number): void {
    while (index >= this.capacity) this.#pages.push(this.#make(PAGE_SIZE));
  }

  get(index: number): V {
    return this.#pages[index >> PAGE_BITS]![index & PAGE_MASK]!;
  }

  set(index: number, value: V): void {
    this.#pages[index >> PAGE_BITS]![index & PAGE_MASK] = value;
  }
}
