import type { PortInfo } from './types.js';

/**
 * Shares one copy of strings that repeat across instances (app names, zones, VIP lists,
 * metadata keys and common values), of port objects, metadata maps and URL forms: at 1M
 * instances each duplicate costs tens of megabytes.
 * Bounded, so high-cardinality input cannot grow it without limit; past the bound strings
 * are simply kept as they are.
 */
export class StringPool {
  readonly #pool = new Map<string, string>();
  readonly #ports = new Map<number, PortInfo>();
  readonly #metadata = new Map<string, Readonly<Record<string, string>>>();
  readonly #urls = new Map<string, UrlForm>();

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
      // Own properties even for a key named `__proto__`, which an assignment would take as the prototype.
      pooled = Object.freeze(Object.fromEntries(keys.map((k) => [this.intern(k), this.intern(m[k]!)])));
      if (id.length <= this.maxLength * 4 && this.#metadata.size < this.maxEntries) this.#metadata.set(id, pooled);
    }
    return pooled;
  }

  /**
   * A URL as a shared form over the instance's host name (or else its address) when it
   * contains it: `http://{host}:8080/health` is the same form for every instance of a
   * deployment, so the URL costs its instance nothing but a pointer. Anything else, or past
   * the bound, is the string itself.
   */
  url(url: string, hostName: string, ipAddr: string): string | UrlForm {
    let kind: UrlForm['kind'] = 'host';
    let at = hostName.length > 0 ? url.indexOf(hostName) : -1;
    if (at < 0 && ipAddr.length > 0) {
      kind = 'ip';
      at = url.indexOf(ipAddr);
    }
    if (at < 0) return url;
    const head = url.slice(0, at);
    const tail = url.slice(at + (kind === 'host' ? hostName : ipAddr).length);
    if (head.length > this.maxLength || tail.length > this.maxLength) return url;
    const id = `${kind}${head.length}:${head}${tail}`;
    let form = this.#urls.get(id);
    if (form === undefined) {
      if (this.#urls.size >= this.maxEntries) return url;
      form = new UrlForm(kind, this.intern(head), this.intern(tail));
      this.#urls.set(id, form);
    }
    return form;
  }
}

/** A URL with the instance's host name or address cut out: see {@link StringPool.url}. */
export class UrlForm {
  constructor(
    readonly kind: 'host' | 'ip',
    readonly head: string,
    readonly tail: string,
  ) {}

  /** The URL around `cut`: the instance's host name for a `host` form, its address for an `ip` one. */
  render(cut: string): string {
    return this.head + cut + this.tail;
  }
}
