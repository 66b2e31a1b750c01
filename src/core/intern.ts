import type { PortInfo } from './types.js';

/**
 * Shares one copy of strings that repeat across instances (app names, zones, VIP lists,
 * metadata keys and common values) and of port objects: at 100k instances each duplicate
 * costs tens of bytes.
 * Bounded, so high-cardinality input cannot grow it without limit; past the bound strings
 * are simply kept as they are.
 */
export class StringPool {
  readonly #pool = new Map<string, string>();
  readonly #ports = new Map<number, PortInfo>();
  readonly #metadata = new Map<string, Readonly<Record<string, string>>>();

  constructor(
    readonly maxEntries = 100_000,
    readonly maxLength = 128,
  ) {}

  intern(s: string): string {
    if (s.length > this.maxLength) return s;
    const pooled = this.#pool.get(s);
    if (pooled !== undefined) return pooled;
    if (this.#pool.size < this.maxEntries) this.#pool.set(s, s);
    return s;
  }

  /** One frozen object per (number, enabled): most instances listen on a handful of ports. */
  port(p: PortInfo): PortInfo {
    const key = p.number * 2 + (p.enabled ? 1 : 0);
    let pooled = this.#ports.get(key);
    if (pooled === undefined) {
      pooled = Object.freeze({ number: p.number, enabled: p.enabled });
      if (this.#ports.size < this.maxEntries) this.#ports.set(key, pooled);
    }
    return pooled;
  }

  /**
   * One frozen object per distinct metadata map (keys sorted, strings pooled): instances of a
   * deployment mostly carry the same few entries, and a shared object saves ~50 bytes and a
   * heap object per instance. Bounded like the strings; past the bound a fresh object is made.
   */
  metadata(m: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
    const keys = Object.keys(m).sort();
    let id = '';
    for (const k of keys) id += `${k.length}:${k}${m[k]!.length}:${m[k]}`;
    let pooled = this.#metadata.get(id);
    if (pooled === undefined) {
      const built: Record<string, string> = {};
      for (const k of keys) built[this.intern(k)] = this.intern(m[k]!);
      pooled = Object.freeze(built);
      if (id.length <= this.maxLength * 4 && this.#metadata.size < this.maxEntries) this.#metadata.set(id, pooled);
    }
    return pooled;
  }
}
