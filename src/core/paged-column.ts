/** Entries per page: 4,096 make 32 KiB pages of a float column. */
const PAGE_BITS = 12;
const PAGE_SIZE = 1 << PAGE_BITS;
const PAGE_MASK = PAGE_SIZE - 1;

type Page = Float64Array | Int32Array | Uint8Array;

/**
 * A numeric column indexed from 0 that grows a page at a time and is never copied. Doubling a
 * contiguous typed array copied megabytes in one turn at half a million instances (a 30-40 ms
 * stall on the event loop); adding a 32 KiB page costs microseconds at any size.
 */
export class PagedColumn<P extends Page> {
  readonly #pages: P[] = [];

  constructor(readonly make: (length: number) => P) {}

  /** Entries the column holds (a multiple of the page size). */
  get capacity(): number {
    return this.#pages.length * PAGE_SIZE;
  }

  /** Adds zeroed pages until `index` fits. */
  ensure(index: number): void {
    while (index >= this.capacity) this.#pages.push(this.make(PAGE_SIZE));
  }

  get(index: number): number {
    return this.#pages[index >> PAGE_BITS]![index & PAGE_MASK]!;
  }

  set(index: number, value: number): void {
    this.#pages[index >> PAGE_BITS]![index & PAGE_MASK] = value;
  }
}

/** References in pages, for the same reason as {@link PagedColumn}: a big array copied when grown. */
export class PagedArray<T> {
  readonly #pages: (T | undefined)[][] = [];

  ensure(index: number): void {
    while (index >= this.#pages.length * PAGE_SIZE) this.#pages.push(new Array<T | undefined>(PAGE_SIZE).fill(undefined));
  }

  get(index: number): T | undefined {
    return this.#pages[index >> PAGE_BITS]![index & PAGE_MASK];
  }

  set(index: number, value: T | undefined): void {
    this.#pages[index >> PAGE_BITS]![index & PAGE_MASK] = value;
  }
}
