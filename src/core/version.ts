import { Entry } from './entry.js';
import type { InstanceRecord } from './types.js';

/** What a version's content is made of besides its version fields: a record's, or a validated registration's. */
export type ContentFields = Omit<InstanceRecord, 'status' | 'overriddenStatus' | 'lastDirtyTimestamp' | 'lastUpdatedTimestamp'>;

/** The version fields that are content (the update time is node-local). */
export type ContentVersion = Pick<InstanceRecord, 'status' | 'overriddenStatus' | 'lastDirtyTimestamp'>;

/**
 * The replicated content of a record as a canonical string: everything but node-local
 * timestamps. Two records with equal dirty timestamps are ordered by this, so every node
 * breaks the tie the same way. {@link contentHash} hashes exactly these characters.
 */
export function canonicalContent(r: InstanceRecord): string {
  const metadata = Object.keys(r.metadata)
    .sort()
    .map((k) => [k, r.metadata[k]]);
  return JSON.stringify([
    r.app,
    r.instanceId,
    r.hostName,
    r.ipAddr,
    r.port.number,
    r.port.enabled,
    r.securePort.number,
    r.securePort.enabled,
    r.status,
    r.overriddenStatus ?? '',
    r.vipAddress,
    r.secureVipAddress,
    r.zone,
    r.region,
    metadata,
    r.homePageUrl,
    r.statusPageUrl,
    r.healthCheckUrl,
    r.renewalIntervalSecs,
    r.durationSecs,
    r.lastDirtyTimestamp,
  ]);
}

/**
 * A 53-bit hash (cyrb53) of {@link canonicalContent}, of `fields` with `version` (a record
 * passes itself twice): cheap to store and compare. Every node must compute the same value
 * for the same content, or ties break differently across peers, so the characters hashed are
 * exactly the canonical string's; they are fed as they are produced instead of building the
 * string, its array and the metadata pairs: that was ~3.3 KB of garbage per Register (with a
 * sort of the metadata keys), a share of the young collections behind the Watch p99. Pass the
 * plain registration rather than a stored {@link Entry}, whose host, address and URL getters
 * build strings.
 */
export function contentHash(fields: ContentFields, version: ContentVersion): number {
  h1 = 0xdeadbeef;
  h2 = 0x41c6ce57;
  feedChar(91); // [
  feedString(fields.app);
  feedChar(44);
  feedString(fields.instanceId);
  feedChar(44);
  feedString(fields.hostName);
  feedChar(44);
  feedString(fields.ipAddr);
  feedChar(44);
  feedNumber(fields.port.number);
  feedChar(44);
  feedRaw(fields.port.enabled ? 'true' : 'false');
  feedChar(44);
  feedNumber(fields.securePort.number);
  feedChar(44);
  feedRaw(fields.securePort.enabled ? 'true' : 'false');
  feedChar(44);
  feedString(version.status);
  feedChar(44);
  feedString(version.overriddenStatus ?? '');
  feedChar(44);
  feedString(fields.vipAddress);
  feedChar(44);
  feedString(fields.secureVipAddress);
  feedChar(44);
  feedString(fields.zone);
  feedChar(44);
  feedString(fields.region);
  feedChar(44);
  feedMetadata(fields.metadata);
  feedChar(44);
  feedString(fields.homePageUrl);
  feedChar(44);
  feedString(fields.statusPageUrl);
  feedChar(44);
  feedString(fields.healthCheckUrl);
  feedChar(44);
  feedNumber(fields.renewalIntervalSecs);
  feedChar(44);
  feedNumber(fields.durationSecs);
  feedChar(44);
  feedNumber(version.lastDirtyTimestamp);
  feedChar(93); // ]
  let a = h1;
  let b = h2;
  a = Math.imul(a ^ (a >>> 16), 2246822507) ^ Math.imul(b ^ (b >>> 13), 3266489909);
  b = Math.imul(b ^ (b >>> 16), 2246822507) ^ Math.imul(a ^ (a >>> 13), 3266489909);
  return 4294967296 * (2097151 & b) + (a >>> 0);
}

// The hash state while one content is fed: module-level, as hashing never re-enters.
let h1 = 0;
let h2 = 0;
/** A number's decimal digits, least significant first (a safe integer has at most 16). */
const digits = new Uint8Array(16);

function feedChar(ch: number): void {
  h1 = Math.imul(h1 ^ ch, 2654435761);
  h2 = Math.imul(h2 ^ ch, 1597334677);
}

function feedRaw(s: string): void {
  for (let i = 0; i < s.length; i++) feedChar(s.charCodeAt(i));
}

/**
 * A string as JSON.stringify writes it. Up to the first character it escapes (a quote, a
 * backslash, a control character) or may escape (a surrogate: only a lone one is), the
 * characters are the string's own; from there on the rest is written by JSON.stringify itself.
 */
function feedString(s: string): void {
  feedChar(34); // "
  // The state in locals through the loop: read and written per character as module variables, a hash took ~25 % longer.
  let a = h1;
  let b = h2;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch < 0x20 || ch === 34 || ch === 92 || (ch >= 0xd800 && ch <= 0xdfff)) {
      h1 = a;
      h2 = b;
      // The quoted rest: its opening quote is already fed, its closing one is fed here.
      const rest = JSON.stringify(s.slice(i));
      for (let j = 1; j < rest.length; j++) feedChar(rest.charCodeAt(j));
      return;
    }
    a = Math.imul(a ^ ch, 2654435761);
    b = Math.imul(b ^ ch, 1597334677);
  }
  h1 = a;
  h2 = b;
  feedChar(34);
}

/** A number as JSON.stringify writes it: safe integers digit by digit, anything else through it. */
function feedNumber(n: number): void {
  if (!Number.isSafeInteger(n)) return feedRaw(JSON.stringify(n));
  // -0 is written "0", as JSON.stringify does.
  if (n < 0) {
    feedChar(45);
    n = -n;
  }
  if (n < SMALL) return feedDigits(n, 0);
  // A millisecond timestamp is past 2^31: its digits in two parts that fit small integers, as
  // remainders of a double cost several times more per digit. The floor is exact below 2^53: a
  // quotient short of the next integer by at least 10^-8 cannot round up to it (half an ulp
  // there is under 7.5e-9).
  const high = Math.floor(n / SMALL);
  feedDigits(high, 0);
  feedDigits(n - high * SMALL, SMALL_DIGITS);
}

/** 10^8: the low part of a number's digits; any part below it is a small integer. */
const SMALL = 100_000_000;
const SMALL_DIGITS = 8;

/** The decimal digits of `n` (below 2^31), left-padded with zeros to `width`. */
function feedDigits(n: number, width: number): void {
  let count = 0;
  do {
    const q = (n / 10) | 0;
    digits[count++] = n - q * 10;
    n = q;
  } while (n > 0);
  while (count < width) digits[count++] = 0;
  while (count > 0) feedChar(48 + digits[--count]!);
}

/**
 * Metadata as `[["key","value"],...]` in sorted key order (the order of Array#sort, which is
 * `<` on strings). A map whose keys come in that order (a pooled one: core/intern.ts) is fed
 * as it lists them; another is fed by picking the next key each time (at most 64 keys, so at
 * most a few thousand comparisons, and no array to sort).
 */
function feedMetadata(m: Readonly<Record<string, string>>): void {
  let previous: string | undefined;
  let sorted = true;
  for (const k in m) {
    if (!Object.hasOwn(m, k) || (previous !== undefined && k < previous)) {
      sorted = false;
      break;
    }
    previous = k;
  }
  feedChar(91);
  if (sorted) {
    let first = true;
    for (const k in m) {
      feedPair(first, k, m[k]!);
      first = false;
    }
  } else {
    previous = undefined;
    for (;;) {
      let next: string | undefined;
      for (const k in m) {
        if ((previous === undefined || k > previous) && (next === undefined || k < next) && Object.hasOwn(m, k)) next = k;
      }
      if (next === undefined) break;
      feedPair(previous === undefined, next, m[next]!);
      previous = next;
    }
  }
  feedChar(93);
}

function feedPair(first: boolean, key: string, value: string): void {
  if (!first) feedChar(44);
  feedChar(91);
  feedString(key);
  feedChar(44);
  feedString(value);
  feedChar(93);
}

/**
 * Orders two versions of the same instance: positive when `a` is newer. Dirty timestamp
 * first; on a tie the content hash, then the canonical content itself (deterministic on
 * every node, unlike "last arrival wins"). Zero means the same content. Equal hashes nearly
 * always mean equal content (an unchanged re-registration): stored entries tell that from
 * their compact fields, so the canonical strings are built only for a hash collision.
 */
export function compareVersions(a: InstanceRecord, aHash: number, b: InstanceRecord, bHash: number): number {
  if (a.lastDirtyTimestamp !== b.lastDirtyTimestamp) return a.lastDirtyTimestamp - b.lastDirtyTimestamp;
  if (aHash !== bHash) return aHash - bHash;
  if (a instanceof Entry && b instanceof Entry && a.sameContentAs(b)) return 0;
  const ca = canonicalContent(a);
  const cb = canonicalContent(b);
  return ca < cb ? -1 : ca > cb ? 1 : 0;
}
