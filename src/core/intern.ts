import type { PortInfo, RegistrationInput } from './types.js';

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
  /** By an order-independent hash of the entries (see {@link metadata}). */
  readonly #metadata = new Map<number, Readonly<Record<string, string>>>();
  /** By a hash of the text around the cut (see {@link url}). */
  readonly #urls = new Map<number, UrlForm>();
  /** Each app's last profile (see {@link profile}). */
  readonly #profiles = new Map<string, Profile>();

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
   * heap object per instance. Found by a hash of the entries in any order, checked entry by
   * entry: a write whose map is pooled already (nearly every one) builds nothing, where a
   * sorted key string per write was ~1.5 KB of garbage. Bounded like the strings; past the
   * bound, or when another map holds the hash, a fresh object is made.
   */
  metadata(m: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
    let hash = 0;
    let chars = 0;
    for (const k in m) {
      if (!Object.hasOwn(m, k)) continue;
      const v = m[k]!;
      // Summed, so the order of the keys does not matter; the key's length marks where the value starts.
      hash = (hash + finish(mix(mix(FNV_OFFSET + k.length, k, 0, k.length), v, 0, v.length))) | 0;
      chars += k.length + v.length;
    }
    const found = this.#metadata.get(hash);
    if (found !== undefined && sameMetadata(found, m)) return found;
    const keys = Object.keys(m).sort();
    // Own properties even for a key named `__proto__`, which an assignment would take as the prototype.
    const pooled = Object.freeze(Object.fromEntries(keys.map((k) => [this.intern(k), this.intern(m[k]!)])));
    if (found === undefined && chars <= this.maxLength * 4 && this.#metadata.size < this.maxEntries) this.#metadata.set(hash, pooled);
    return pooled;
  }

  /**
   * The profile of a registration: the last one made for its app when every field matches
   * (pooled values compare by identity), else a new one, which becomes the app's last. The
   * instances of a deployment share one; a registration unlike its app's last (two
   * deployments with other ports alternating, or URLs that do not contain the host) costs one
   * more small object. Bounded like the strings: past the bound a new app's profile is not kept.
   */
  profile(r: RegistrationInput): Profile {
    const app = this.intern(r.app);
    const port = this.port(r.port);
    const securePort = this.port(r.securePort);
    const region = this.intern(r.region);
    const homePageUrl = this.url(r.homePageUrl, r.hostName, r.ipAddr);
    const statusPageUrl = this.url(r.statusPageUrl, r.hostName, r.ipAddr);
    const healthCheckUrl = this.url(r.healthCheckUrl, r.hostName, r.ipAddr);
    const last = this.#profiles.get(app);
    if (
      last !== undefined &&
      last.port === port &&
      last.securePort === securePort &&
      last.region === region &&
      last.renewalIntervalSecs === r.renewalIntervalSecs &&
      last.durationSecs === r.durationSecs &&
      last.homePageUrl === homePageUrl &&
      last.statusPageUrl === statusPageUrl &&
      last.healthCheckUrl === healthCheckUrl
    ) {
      return last;
    }
    const made: Profile = Object.freeze({
      app,
      port,
      securePort,
      region,
      renewalIntervalSecs: r.renewalIntervalSecs,
      durationSecs: r.durationSecs,
      homePageUrl,
      statusPageUrl,
      healthCheckUrl,
    });
    if (last !== undefined || this.#profiles.size < this.maxEntries) this.#profiles.set(app, made);
    return made;
  }

  /**
   * A URL as a shared form over the instance's host name (or else its address) when it
   * contains it: `http://{host}:8080/health` is the same form for every instance of a
   * deployment, so the URL costs its instance nothing but a pointer. Anything else, or past
   * the bound, or when another form holds its hash, is the string itself.
   */
  url(url: string, hostName: string, ipAddr: string): string | UrlForm {
    let kind: UrlForm['kind'] = 'host';
    let at = hostName.length > 0 ? url.indexOf(hostName) : -1;
    if (at < 0 && ipAddr.length > 0) {
      kind = 'ip';
      at = url.indexOf(ipAddr);
    }
    if (at < 0) return url;
    const after = at + (kind === 'host' ? hostName : ipAddr).length;
    if (at > this.maxLength || url.length - after > this.maxLength) return url;
    // Found by a hash of the text around the cut, checked against it: a pooled form costs no string.
    const hash = finish(mix(mix(FNV_OFFSET + (kind === 'host' ? at : ~at), url, 0, at), url, after, url.length));
    const found = this.#urls.get(hash);
    if (found !== undefined) {
      const fits = found.kind === kind && found.head.length === at && found.tail.length === url.length - after && url.startsWith(found.head) && url.endsWith(found.tail);
      return fits ? found : url;
    }
    if (this.#urls.size >= this.maxEntries) return url;
    const form = new UrlForm(kind, this.intern(url.slice(0, at)), this.intern(url.slice(after)));
    this.#urls.set(hash, form);
    return form;
  }
}

/** Whether two metadata maps hold the same entries, in whatever order. */
export function sameMetadata(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  let count = 0;
  for (const k in a) {
    if (!Object.hasOwn(a, k)) continue;
    if (!Object.hasOwn(b, k) || a[k] !== b[k]) return false;
    count++;
  }
  for (const k in b) if (Object.hasOwn(b, k)) count--;
  return count === 0;
}

const FNV_OFFSET = 0x811c9dc5;

/** FNV-1a over `s[from..to)`, continuing from `h`: the pools' lookup keys, hashed without building a string. */
function mix(h: number, s: string, from: number, to: number): number {
  for (let i = from; i < to; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h;
}

/** Spreads every bit of a {@link mix} result over the others (murmur3's finaliser), so sums of them stay well spread. */
function finish(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * What a stored version shares with the other instances of its app, pooled by
 * {@link StringPool.profile}: a million instances of a few hundred deployments keep a few
 * hundred of these instead of 9 fields each (a record went from 224 to 160 bytes). VIPs,
 * zone and metadata stay in the record: they vary within an app more often (zones alternate
 * as instances come).
 */
export interface Profile {
  readonly app: string;
  readonly port: PortInfo;
  readonly securePort: PortInfo;
  readonly region: string;
  readonly renewalIntervalSecs: number;
  readonly durationSecs: number;
  readonly homePageUrl: string | UrlForm;
  readonly statusPageUrl: string | UrlForm;
  readonly healthCheckUrl: string | UrlForm;
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
