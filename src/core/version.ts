import type { InstanceRecord } from './types.js';

/**
 * The replicated content of a record as a canonical string: everything but node-local
 * timestamps. Two records with equal dirty timestamps are ordered by this, so every node
 * breaks the tie the same way.
 */
export function canonicalContent(r: InstanceRecord): string {
  const metadata = Object.keys(r.metadata)
    .sort()
    .map((k) => [k, r.metadata[k]]);
  return JSON.stringify([
    r.app, r.instanceId, r.hostName, r.ipAddr, r.port.number, r.port.enabled, r.securePort.number,
    r.securePort.enabled, r.status, r.overriddenStatus ?? '', r.vipAddress, r.secureVipAddress, r.zone,
    r.region, metadata, r.homePageUrl, r.statusPageUrl, r.healthCheckUrl, r.renewalIntervalSecs,
    r.durationSecs, r.lastDirtyTimestamp,
  ]);
}

// cyrb53 state. contentHash runs on every write: it feeds the characters canonicalContent
// would produce straight into the hash instead of building that string (and its arrays),
// which cost more than the hashing itself. Module state, as the hash never re-enters.
let h1 = 0;
let h2 = 0;

function feed(code: number): void {
  h1 = Math.imul(h1 ^ code, 2654435761);
  h2 = Math.imul(h2 ^ code, 1597334677);
}

const HEX = '0123456789abcdef';
/** JSON.stringify's short escapes, by code unit. */
const SHORT_ESCAPES: ReadonlyMap<number, number> = new Map([
  [0x08, 0x62], // \b
  [0x09, 0x74], // \t
  [0x0a, 0x6e], // \n
  [0x0c, 0x66], // \f
  [0x0d, 0x72], // \r
  [0x22, 0x22], // \"
  [0x5c, 0x5c], // \\
]);

function feedUnicodeEscape(code: number): void {
  feed(0x5c);
  feed(0x75);
  for (let shift = 12; shift >= 0; shift -= 4) feed(HEX.charCodeAt((code >> shift) & 15));
}

/** A string as JSON.stringify writes it (quotes, escapes, lone surrogates as \u escapes). */
function feedString(s: string): void {
  feed(0x22);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c && (c < 0xd800 || c > 0xdfff)) {
      feed(c);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        feed(c);
        feed(next);
        i++;
      } else {
        feedUnicodeEscape(c);
      }
      continue;
    }
    if (c >= 0xdc00 && c <= 0xdfff) {
      feedUnicodeEscape(c);
      continue;
    }
    const short = SHORT_ESCAPES.get(c);
    if (short !== undefined) {
      feed(0x5c);
      feed(short);
    } else {
      feedUnicodeEscape(c);
    }
  }
  feed(0x22);
}

const digits: number[] = [];

/** A number as JSON.stringify writes it; non-negative integers (all that validation lets in) without a string. */
function feedNumber(n: number): void {
  if (Number.isSafeInteger(n) && n >= 0) {
    digits.length = 0;
    do {
      const digit = n % 10;
      digits.push(digit);
      n = (n - digit) / 10;
    } while (n > 0);
    for (let i = digits.length - 1; i >= 0; i--) feed(0x30 + digits[i]!);
    return;
  }
  const s = Number.isFinite(n) ? String(n) : 'null';
  for (let i = 0; i < s.length; i++) feed(s.charCodeAt(i));
}

function feedBoolean(b: boolean): void {
  const s = b ? 'true' : 'false';
  for (let i = 0; i < s.length; i++) feed(s.charCodeAt(i));
}

const COMMA = 0x2c;

/**
 * A 53-bit hash (cyrb53) of {@link canonicalContent}: cheap to store and compare. The same
 * value as hashing that string, computed without building it (a property test holds the two
 * equal, so nodes of either implementation break ties alike).
 */
export function contentHash(r: InstanceRecord): number {
  h1 = 0xdeadbeef;
  h2 = 0x41c6ce57;
  feed(0x5b); // [
  feedString(r.app);
  feed(COMMA);
  feedString(r.instanceId);
  feed(COMMA);
  feedString(r.hostName);
  feed(COMMA);
  feedString(r.ipAddr);
  feed(COMMA);
  feedNumber(r.port.number);
  feed(COMMA);
  feedBoolean(r.port.enabled);
  feed(COMMA);
  feedNumber(r.securePort.number);
  feed(COMMA);
  feedBoolean(r.securePort.enabled);
  feed(COMMA);
  feedString(r.status);
  feed(COMMA);
  feedString(r.overriddenStatus ?? '');
  feed(COMMA);
  feedString(r.vipAddress);
  feed(COMMA);
  feedString(r.secureVipAddress);
  feed(COMMA);
  feedString(r.zone);
  feed(COMMA);
  feedString(r.region);
  feed(COMMA);
  feed(0x5b);
  const keys = Object.keys(r.metadata).sort();
  for (let i = 0; i < keys.length; i++) {
    if (i > 0) feed(COMMA);
    feed(0x5b);
    feedString(keys[i]!);
    feed(COMMA);
    feedString(r.metadata[keys[i]!]!);
    feed(0x5d);
  }
  feed(0x5d);
  feed(COMMA);
  feedString(r.homePageUrl);
  feed(COMMA);
  feedString(r.statusPageUrl);
  feed(COMMA);
  feedString(r.healthCheckUrl);
  feed(COMMA);
  feedNumber(r.renewalIntervalSecs);
  feed(COMMA);
  feedNumber(r.durationSecs);
  feed(COMMA);
  feedNumber(r.lastDirtyTimestamp);
  feed(0x5d); // ]
  let a = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  const b = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(a ^ (a >>> 13), 3266489909);
  a = a >>> 0;
  return 4294967296 * (2097151 & b) + a;
}

/**
 * Orders two versions of the same instance: positive when `a` is newer. Dirty timestamp
 * first; on a tie the content hash, then the canonical content itself (deterministic on
 * every node, unlike "last arrival wins"). Zero means the same content.
 */
export function compareVersions(a: InstanceRecord, aHash: number, b: InstanceRecord, bHash: number): number {
  if (a.lastDirtyTimestamp !== b.lastDirtyTimestamp) return a.lastDirtyTimestamp - b.lastDirtyTimestamp;
  if (aHash !== bHash) return aHash - bHash;
  const ca = canonicalContent(a);
  const cb = canonicalContent(b);
  return ca < cb ? -1 : ca > cb ? 1 : 0;
}
