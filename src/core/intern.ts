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
}
