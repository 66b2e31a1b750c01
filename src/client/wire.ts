import type { Instance, LeaseInfo, Port } from '../gen/roster/v1/instance.js';
import type { ListApplicationsResponse } from '../gen/roster/v1/registry_service.js';

/**
 * A hand-written decoder for ListApplications chunks, the one large answer: the generated
 * decoder spends most of a 100k-instance read in per-field generic code. It accepts any valid
 * encoding (fields in any order, unknown fields skipped) and yields the same objects as
 * `ListApplicationsResponse.decode`; a property test holds the two together.
 */
type Utf8Sliceable = Buffer & { utf8Slice(start: number, end: number): string };

class Reader {
  pos: number;

  constructor(
    readonly buf: Buffer,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  varint(): number {
    const buf = this.buf;
    let pos = this.pos;
    if (pos >= this.end) throw new RangeError('truncated varint');
    let b = buf[pos++]!;
    // Tags, lengths and small numbers: one byte.
    if (b < 0x80) {
      this.pos = pos;
      return b;
    }
    let result = b & 0x7f;
    let scale = 128;
    for (;;) {
      if (pos >= this.end) throw new RangeError('truncated varint');
      b = buf[pos++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 128;
      if (scale > 2 ** 63) throw new RangeError('varint too long');
    }
    this.pos = pos;
    return result;
  }

  string(): string {
    const length = this.varint();
    const start = this.pos;
    const end = start + length;
    if (end > this.end) throw new RangeError('truncated field');
    this.pos = end;
    // Buffer's own utf8Slice: what toString('utf8', ...) calls after argument checks we do not need.
    return (this.buf as Utf8Sliceable).utf8Slice(start, end);
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) this.pos = reenter(this);
    else if (wireType === 5) this.pos += 4;
    else throw new RangeError(`unsupported wire type ${wireType}`);
  }
}

function port(r: Reader, end: number): Port {
  const p: Port = { number: 0, enabled: false };
  while (r.pos < end) {
    const tag = r.varint();
    if (tag === 8) p.number = r.varint();
    else if (tag === 16) p.enabled = r.varint() !== 0;
    else r.skip(tag & 7);
  }
  return p;
}

function lease(r: Reader, end: number): LeaseInfo {
  const l: LeaseInfo = {
    renewalIntervalSecs: 0,
    durationSecs: 0,
    registrationTimestamp: 0,
    lastRenewalTimestamp: 0,
    evictionTimestamp: 0,
    serviceUpTimestamp: 0,
  };
  while (r.pos < end) {
    const tag = r.varint();
    switch (tag) {
      case 8:
        l.renewalIntervalSecs = r.varint();
        break;
      case 16:
        l.durationSecs = r.varint();
        break;
      case 24:
        l.registrationTimestamp = r.varint();
        break;
      case 32:
        l.lastRenewalTimestamp = r.varint();
        break;
      case 40:
        l.evictionTimestamp = r.varint();
        break;
      case 48:
        l.serviceUpTimestamp = r.varint();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  return l;
}

function instance(r: Reader, end: number): Instance {
  const i: Instance = {
    app: '',
    instanceId: '',
    hostName: '',
    ipAddr: '',
    port: undefined,
    securePort: undefined,
    status: 0,
    overriddenStatus: 0,
    vipAddress: '',
    secureVipAddress: '',
    zone: '',
    region: '',
    metadata: {},
    homePageUrl: '',
    statusPageUrl: '',
    healthCheckUrl: '',
    lease: undefined,
    lastDirtyTimestamp: 0,
    lastUpdatedTimestamp: 0,
  };
  while (r.pos < end) {
    const tag = r.varint();
    switch (tag) {
      case 10:
        i.app = r.string();
        break;
      case 18:
        i.instanceId = r.string();
        break;
      case 26:
        i.hostName = r.string();
        break;
      case 34:
        i.ipAddr = r.string();
        break;
      case 42:
        i.port = port(r, reenter(r));
        break;
      case 50:
        i.securePort = port(r, reenter(r));
        break;
      case 56:
        i.status = r.varint();
        break;
      case 64:
        i.overriddenStatus = r.varint();
        break;
      case 74:
        i.vipAddress = r.string();
        break;
      case 82:
        i.secureVipAddress = r.string();
        break;
      case 90:
        i.zone = r.string();
        break;
      case 98:
        i.region = r.string();
        break;
      case 106: {
        const entryEnd = reenter(r);
        let key = '';
        let value = '';
        while (r.pos < entryEnd) {
          const t = r.varint();
          if (t === 10) key = r.string();
          else if (t === 18) value = r.string();
          else r.skip(t & 7);
        }
        i.metadata[key] = value;
        break;
      }
      case 114:
        i.homePageUrl = r.string();
        break;
      case 122:
        i.statusPageUrl = r.string();
        break;
      case 130:
        i.healthCheckUrl = r.string();
        break;
      case 138:
        i.lease = lease(r, reenter(r));
        break;
      case 144:
        i.lastDirtyTimestamp = r.varint();
        break;
      case 152:
        i.lastUpdatedTimestamp = r.varint();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  return i;
}

/** Reads a sub-message's length and leaves the reader at its first byte; returns its end. */
function reenter(r: Reader): number {
  const length = r.varint();
  const end = r.pos + length;
  if (end > r.end) throw new RangeError('truncated sub-message');
  return end;
}

/** Decodes one roster.v1.ListApplicationsResponse. */
export function decodeListChunk(bytes: Uint8Array): ListApplicationsResponse {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = new Reader(buf);
  const out: ListApplicationsResponse = { revision: 0, reconcileHash: '', totalInstances: 0, instances: [], nodeId: '' };
  while (r.pos < r.end) {
    const tag = r.varint();
    switch (tag) {
      case 8:
        out.revision = r.varint();
        break;
      case 18:
        out.reconcileHash = r.string();
        break;
      case 24:
        out.totalInstances = r.varint();
        break;
      case 34:
        out.instances.push(instance(r, reenter(r)));
        break;
      case 42:
        out.nodeId = r.string();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  return out;
}
