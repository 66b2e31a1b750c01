import type { Change, Registered } from '../core/types.js';
import * as pb from '../gen/roster/v1/instance.js';
import { HeartbeatsResponse, RegistryServiceService, type HeartbeatRequest, type HeartbeatResult, type HeartbeatsRequest, type RegisterRequest } from '../gen/roster/v1/registry_service.js';
import * as rpb from '../gen/roster/v1/replication_service.js';
import type { ReplicationTask } from '../replication/link.js';
import { NO_LEASE, statusToProto } from './convert.js';
import { instance, leaseAndVersion, Writer } from './wire.js';

/**
 * Hand-written codecs for the write path's hottest messages: Heartbeats batches (decoded and
 * answered once per stream message), unary Heartbeats, Register's request and answer, Watch's
 * changes (encoded once per change, shared by every watcher), and the Replicate stream's
 * batches and answers both ways (every write and renewal, once per peer). The generated code
 * builds a reader, tracks recursion on it, and converts each int64 through a string; per
 * renewal that was a measurable share of the server's CPU. The bytes are the same messages:
 * property tests check both directions against the generated codecs.
 */

/** Longest varint the fast path reads: 7 bytes hold 49 bits, always a safe integer. */
const MAX_FAST_VARINT_BYTES = 7;

/**
 * The hand-written request decoders by method path. Each reads the common shape of its message
 * (known fields with their wire types, ASCII strings, varints below 2^49) and gives undefined
 * for anything else (unknown fields, non-ASCII text, large or negative numbers, malformed
 * bytes), which the server then hands to the generated decoder with strict UTF-8 checks, so
 * the result and the errors are exactly the generated decoder's. ASCII is valid UTF-8, so
 * nothing strict is skipped, and a request read here needs no reader object at all.
 */
export const HAND_DECODERS: ReadonlyMap<string, (bytes: Uint8Array) => object | undefined> = new Map<string, (bytes: Uint8Array) => object | undefined>([
  [RegistryServiceService.register.path, readRegisterRequest],
  [RegistryServiceService.heartbeat.path, readHeartbeatRequest],
  [RegistryServiceService.heartbeats.path, readHeartbeatsRequest],
  [rpb.ReplicationServiceService.replicate.path, readReplicateRequest],
]);

// The fast reader's state: module-level, as decoding never re-enters.
const EMPTY = new Uint8Array(0);
const EMPTY_BUFFER = Buffer.alloc(0);
/** The bytes being read, always a Buffer: one kind of array for the element loads, and latin1 slices for strings. */
let buf: Buffer = EMPTY_BUFFER;
let pos = 0;

/** Points the fast reader at `bytes` for `read` (told where they end), then lets go of them (the state is module-level). */
function reading<T>(bytes: Uint8Array, read: (end: number) => T | undefined): T | undefined {
  buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  pos = 0;
  try {
    return read(bytes.length);
  } finally {
    buf = EMPTY_BUFFER;
  }
}

/** A varint of at most {@link MAX_FAST_VARINT_BYTES} bytes ending by `end`, or -1. */
function varint(end: number): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < MAX_FAST_VARINT_BYTES && pos < end; i++) {
    const byte = buf[pos++]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return value;
    scale *= 128;
  }
  return -1;
}

/**
 * An ASCII string of `length` bytes at `pos` ending by `end`, or undefined. Made by one
 * latin1 slice (the string alone): building it a character at a time made a string per
 * character, and the generated reader an array of character codes per string.
 */
function ascii(length: number, end: number): string | undefined {
  const stop = pos + length;
  if (stop > end) return undefined;
  const b = buf;
  for (let i = pos; i < stop; i++) if (b[i]! >= 0x80) return undefined;
  const s = buf.toString('latin1', pos, stop);
  pos = stop;
  return s;
}

/** Longest field {@link sharedAscii} keeps; slots of the cache (a power of two). */
const SHARED_MAX_BYTES = 64;
const SHARED_SLOTS = 4096;
/** The last string read into each slot: at most 4,096 strings of 64 characters (~0.3 MB). */
const shared: Array<string | undefined> = new Array<string | undefined>(SHARED_SLOTS).fill(undefined);

/**
 * {@link ascii} for the fields that repeat across a deployment's instances (app, VIPs, zone,
 * region, metadata keys and values): the string last read from the same bytes, kept in a slot
 * found by a hash of them. A hit makes no string, and the one it gives has its hash computed
 * already for the pools and maps it goes through next (core/intern.ts). A miss, or another
 * string in the slot, makes the string and puts it there.
 */
function sharedAscii(length: number, end: number): string | undefined {
  const stop = pos + length;
  if (length > SHARED_MAX_BYTES || stop > end) return ascii(length, end);
  let h = 0x811c9dc5 ^ length;
  const b = buf;
  for (let i = pos; i < stop; i++) {
    const byte = b[i]!;
    if (byte >= 0x80) return undefined;
    h = Math.imul(h ^ byte, 0x01000193);
  }
  const slot = (h ^ (h >>> 16)) & (SHARED_SLOTS - 1);
  const kept = shared[slot];
  if (kept !== undefined && kept.length === length && sameAscii(kept, pos)) {
    pos = stop;
    return kept;
  }
  const s = buf.toString('latin1', pos, stop);
  pos = stop;
  shared[slot] = s;
  return s;
}

/** Whether `s` is the bytes at `at` (as many as it has characters). */
function sameAscii(s: string, at: number): boolean {
  const b = buf;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) !== b[at + i]) return false;
  return true;
}

function fastHeartbeat(end: number): HeartbeatRequest | undefined {
  const hb: HeartbeatRequest = { app: '', instanceId: '', lastDirtyTimestamp: 0 };
  while (pos < end) {
    const tag = buf[pos++]!;
    if (tag === 24) {
      const n = varint(end);
      if (n < 0) return undefined;
      hb.lastDirtyTimestamp = n;
      continue;
    }
    if (tag !== 10 && tag !== 18) return undefined;
    const length = varint(end);
    if (length < 0) return undefined;
    const s = tag === 10 ? sharedAscii(length, end) : ascii(length, end);
    if (s === undefined) return undefined;
    if (tag === 10) hb.app = s;
    else hb.instanceId = s;
  }
  return pos === end ? hb : undefined;
}

/** A unary `HeartbeatRequest` of the common shape, or undefined (see {@link HAND_DECODERS}). */
export function readHeartbeatRequest(bytes: Uint8Array): HeartbeatRequest | undefined {
  return reading(bytes, fastHeartbeat);
}

/** A `HeartbeatsRequest` of the common shape, or undefined (see {@link HAND_DECODERS}). */
export function readHeartbeatsRequest(bytes: Uint8Array): HeartbeatsRequest | undefined {
  return reading(bytes, heartbeatsTo);
}

function heartbeatsTo(end: number): HeartbeatsRequest | undefined {
  const read = batch(end, fastHeartbeat);
  return read && { batchId: read.batchId, heartbeats: read.items };
}

/** A batch: its id (field 1) and its items (field 2, each read by `item`), or undefined past the common shape. */
function batch<T>(end: number, item: (end: number) => T | undefined): { batchId: number; items: T[] } | undefined {
  let batchId = 0;
  const items: T[] = [];
  while (pos < end) {
    const tag = buf[pos++]!;
    if (tag === 8) {
      const n = varint(end);
      if (n < 0) return undefined;
      batchId = n;
      continue;
    }
    if (tag !== 18) return undefined;
    const value = fastSubmessage(end, item);
    if (value === undefined) return undefined;
    items.push(value);
  }
  return { batchId, items };
}

const INT32_LIMIT = 2 ** 31;
const UINT32_LIMIT = 2 ** 32;

/**
 * A `RegisterRequest` of the common shape, or undefined (see {@link HAND_DECODERS}): the
 * generated reader builds an array of character codes for every string and a reader object
 * per message, ~2.5 KB of garbage per Register.
 */
export function readRegisterRequest(bytes: Uint8Array): RegisterRequestRead | undefined {
  return reading(bytes, registerTo);
}

/** A Register request read by hand, with the bytes its instance was read from: its answer may reuse them (see {@link encodeRegisterResponse}). */
export interface RegisterRequestRead extends RegisterRequest {
  instanceBytes: Uint8Array | undefined;
}

function registerTo(end: number): RegisterRequestRead | undefined {
  const message: RegisterRequestRead = { instance: undefined, instanceBytes: undefined };
  while (pos < end) {
    if (buf[pos++] !== 10) return undefined;
    const length = varint(end);
    if (length < 0 || pos + length > end) return undefined;
    const start = pos;
    const instance = fastInstance(pos + length);
    if (instance === undefined) return undefined;
    message.instance = instance;
    message.instanceBytes = buf.subarray(start, pos);
  }
  return message;
}

/**
 * How each tag of roster.v1.Instance's string fields (field number 1-4, 9-12, 14-16, wire type 2)
 * is read: {@link PLAIN} by {@link ascii}, {@link SHARED} (app, VIPs, zone, region: they repeat
 * across a deployment) by {@link sharedAscii}; 0 for any other tag. A typed array and a switch
 * per field: an object of field names and keyed stores into the message were ~1 % of a Register.
 */
const STRING_TAGS = new Uint8Array(131);
const PLAIN = 1;
const SHARED = 2;
for (const tag of [18, 26, 34, 114, 122, 130]) STRING_TAGS[tag] = PLAIN;
for (const tag of [10, 74, 82, 90, 98]) STRING_TAGS[tag] = SHARED;

/** The metadata of an instance that sends none (a replicated heartbeat's, most often): shared until an entry comes. */
const NO_METADATA: Record<string, string> = Object.freeze({}) as Record<string, string>;

function fastInstance(end: number): pb.Instance | undefined {
  const m: pb.Instance = {
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
    metadata: NO_METADATA,
    homePageUrl: '',
    statusPageUrl: '',
    healthCheckUrl: '',
    lease: undefined,
    lastDirtyTimestamp: 0,
    lastUpdatedTimestamp: 0,
  };
  while (pos < end) {
    let tag = buf[pos++]!;
    // Tags of fields 16-19 take two bytes.
    if (tag >= 0x80) {
      if (pos >= end || buf[pos] !== 1) return undefined;
      pos++;
      tag = tag - 0x80 + 128;
    }
    const kind = tag < STRING_TAGS.length ? STRING_TAGS[tag]! : 0;
    if (kind !== 0) {
      const length = varint(end);
      if (length < 0) return undefined;
      const s = kind === SHARED ? sharedAscii(length, end) : ascii(length, end);
      if (s === undefined) return undefined;
      setString(m, tag, s);
      continue;
    }
    switch (tag) {
      case 42:
      case 50: {
        // A port sent twice is left to the generated decoder, which keeps the last one (the
        // spec merges them): the Register answer, made of these bytes, must read as stored.
        if ((tag === 42 ? m.port : m.securePort) !== undefined) return undefined;
        const port = fastSubmessage(end, fastPort);
        if (port === undefined) return undefined;
        if (tag === 42) m.port = port;
        else m.securePort = port;
        continue;
      }
      case 56:
      case 64: {
        const n = varint(end);
        if (n < 0 || n >= INT32_LIMIT) return undefined;
        if (tag === 56) m.status = n;
        else m.overriddenStatus = n;
        continue;
      }
      case 106: {
        if (m.metadata === NO_METADATA) m.metadata = {};
        const length = varint(end);
        if (length < 0 || pos + length > end || !fastMetadataEntry(pos + length, m.metadata)) return undefined;
        continue;
      }
      case 138: {
        const lease = fastSubmessage(end, fastLease);
        if (lease === undefined) return undefined;
        m.lease = lease;
        continue;
      }
      case 144:
      case 152: {
        const n = varint(end);
        if (n < 0) return undefined;
        if (tag === 144) m.lastDirtyTimestamp = n;
        else m.lastUpdatedTimestamp = n;
        continue;
      }
      default:
        return undefined;
    }
  }
  return pos === end ? m : undefined;
}

/** Stores a string field of roster.v1.Instance read under `tag` (one of {@link STRING_TAGS}). */
function setString(m: pb.Instance, tag: number, s: string): void {
  switch (tag) {
    case 10:
      m.app = s;
      return;
    case 18:
      m.instanceId = s;
      return;
    case 26:
      m.hostName = s;
      return;
    case 34:
      m.ipAddr = s;
      return;
    case 74:
      m.vipAddress = s;
      return;
    case 82:
      m.secureVipAddress = s;
      return;
    case 90:
      m.zone = s;
      return;
    case 98:
      m.region = s;
      return;
    case 114:
      m.homePageUrl = s;
      return;
    case 122:
      m.statusPageUrl = s;
      return;
    default:
      m.healthCheckUrl = s;
  }
}

/** A length-delimited sub-message read by `read` up to its end, or undefined. */
function fastSubmessage<T>(end: number, read: (end: number) => T | undefined): T | undefined {
  const length = varint(end);
  if (length < 0 || pos + length > end) return undefined;
  return read(pos + length);
}

function fastPort(end: number): pb.Port | undefined {
  const port: pb.Port = { number: 0, enabled: false };
  while (pos < end) {
    const tag = buf[pos++]!;
    const n = varint(end);
    if (n < 0) return undefined;
    if (tag === 8 && n < UINT32_LIMIT) port.number = n;
    else if (tag === 16 && n <= 1) port.enabled = n === 1;
    else return undefined;
  }
  return port;
}

function fastLease(end: number): pb.LeaseInfo | undefined {
  const lease: pb.LeaseInfo = { renewalIntervalSecs: 0, durationSecs: 0, registrationTimestamp: 0, lastRenewalTimestamp: 0, evictionTimestamp: 0, serviceUpTimestamp: 0 };
  while (pos < end) {
    const tag = buf[pos++]!;
    const n = varint(end);
    if (n < 0) return undefined;
    if (tag === 8 && n < UINT32_LIMIT) lease.renewalIntervalSecs = n;
    else if (tag === 16 && n < UINT32_LIMIT) lease.durationSecs = n;
    else if (tag === 24) lease.registrationTimestamp = n;
    else if (tag === 32) lease.lastRenewalTimestamp = n;
    else if (tag === 40) lease.evictionTimestamp = n;
    else if (tag === 48) lease.serviceUpTimestamp = n;
    else return undefined;
  }
  return lease;
}

/** One map entry into `metadata`, as the generated decoder adds it (a missing key or value is ""). */
function fastMetadataEntry(end: number, metadata: Record<string, string>): boolean {
  let key = '';
  let value = '';
  while (pos < end) {
    const tag = buf[pos++]!;
    if (tag !== 10 && tag !== 18) return false;
    const length = varint(end);
    if (length < 0) return false;
    const s = sharedAscii(length, end);
    if (s === undefined) return false;
    if (tag === 10) key = s;
    else value = s;
  }
  metadata[key] = value;
  return true;
}

/** A `ReplicateRequest` of the common shape, or undefined (see {@link HAND_DECODERS}). */
export function readReplicateRequest(bytes: Uint8Array): rpb.ReplicateRequest | undefined {
  return reading(bytes, replicateRequestTo);
}

function replicateRequestTo(end: number): rpb.ReplicateRequest | undefined {
  const read = batch(end, fastTask);
  return read && { batchId: read.batchId, tasks: read.items };
}

function fastTask(end: number): rpb.ReplicationTask | undefined {
  const task: rpb.ReplicationTask = { action: 0, instance: undefined, originTimestamp: 0 };
  while (pos < end) {
    const tag = buf[pos++]!;
    if (tag === 18) {
      const record = fastSubmessage(end, fastInstance);
      if (record === undefined) return undefined;
      task.instance = record;
      continue;
    }
    const n = varint(end);
    if (n < 0) return undefined;
    if (tag === 8 && n < INT32_LIMIT) task.action = n;
    else if (tag === 24) task.originTimestamp = n;
    else return undefined;
  }
  return pos === end ? task : undefined;
}

/** A `ReplicateResponse` of the common shape (codes only: no conflict record), or undefined. */
export function readReplicateResponse(bytes: Uint8Array): rpb.ReplicateResponse | undefined {
  return reading(bytes, replicateResponseTo);
}

function replicateResponseTo(end: number): rpb.ReplicateResponse | undefined {
  const read = batch(end, fastResult);
  return read && { batchId: read.batchId, results: read.items };
}

/** A result of its code only (a conflict's record takes the generated decoder). */
function fastResult(end: number): rpb.TaskResult | undefined {
  const result: rpb.TaskResult = { code: 0, instance: undefined };
  while (pos < end) {
    if (buf[pos++] !== 8) return undefined;
    const code = varint(end);
    if (code < 0 || code >= INT32_LIMIT) return undefined;
    result.code = code;
  }
  return result;
}

const ACTION: Readonly<Record<ReplicationTask['action'], rpb.ReplicationAction>> = {
  register: rpb.ReplicationAction.REPLICATION_ACTION_REGISTER,
  heartbeat: rpb.ReplicationAction.REPLICATION_ACTION_HEARTBEAT,
  cancel: rpb.ReplicationAction.REPLICATION_ACTION_CANCEL,
};

/**
 * Encodes a `ReplicateRequest` straight from the tasks: a register carries the whole record,
 * a heartbeat or cancel its app, instance id and version (field 18).
 */
export function encodeReplicateRequest(batchId: number, tasks: readonly ReplicationTask[]): Buffer {
  const w = new Writer(16 + tasks.length * 64);
  w.uint(1, batchId);
  for (const task of tasks) {
    const at = w.begin(2, INSTANCE_ROOM);
    w.uint(1, ACTION[task.action]);
    const inner = w.begin(2, INSTANCE_ROOM);
    if (task.action === 'register') instance(w, { record: task.record, lease: NO_LEASE });
    else {
      w.string(1, task.app);
      w.string(2, task.instanceId);
      w.uint(18, task.lastDirtyTimestamp);
    }
    w.end(inner, INSTANCE_ROOM);
    w.uint(3, task.originTimestamp);
    w.end(at, INSTANCE_ROOM);
  }
  return w.finish();
}

/** Encodes a `ReplicateResponse`; one carrying a record (a conflict, rare) takes the generated encoder. */
export function encodeReplicateResponse(batchId: number, results: readonly rpb.TaskResult[]): Buffer {
  if (results.some((r) => r.instance !== undefined)) return Buffer.from(rpb.ReplicateResponse.encode({ batchId, results: [...results] }).finish());
  const w = new Writer(16 + results.length * 4);
  w.uint(1, batchId);
  for (const r of results) {
    const at = w.begin(2, 1);
    w.uint(1, r.code);
    w.end(at, 1);
  }
  return w.finish();
}

/** Room for a result's length: a result carries an error message of at most this many bytes here. */
const RESULT_ROOM = 2;
const MAX_FAST_MESSAGE_CHARS = 4_000;

/**
 * Encodes a `HeartbeatsResponse`. Codes are gRPC codes (0..16); a negative code or a very
 * long message (never produced here) takes the generated encoder.
 */
export function encodeHeartbeatsResponse(batchId: number, results: readonly HeartbeatResult[]): Buffer {
  for (const r of results) {
    if (r.code < 0 || r.message.length > MAX_FAST_MESSAGE_CHARS) return Buffer.from(HeartbeatsResponse.encode({ batchId, results: [...results] }).finish());
  }
  const w = new Writer(16 + results.length * 8);
  w.uint(1, batchId);
  for (const r of results) {
    const at = w.begin(2, r.message.length === 0 ? 1 : RESULT_ROOM);
    w.uint(1, r.code);
    w.string(2, r.message);
    w.uint(3, r.status);
    w.end(at, r.message.length === 0 ? 1 : RESULT_ROOM);
  }
  return w.finish();
}

/** Room for an instance's length (validation keeps an instance under 2 MiB). */
const INSTANCE_ROOM = 3;
/** Most encoded instances take a few hundred bytes. */
const SCRATCH_BYTES = 4096;

/**
 * Encoding space shared by the answers encoded here (encoding is synchronous): each is copied
 * out at its size, instead of a kilobyte of buffer pool and two buffer objects per answer.
 */
const scratch = new Writer(SCRATCH_BYTES);

/** The scratch writer, emptied; after an unusually large message it starts small again. */
function scratchWriter(): Writer {
  if (scratch.buf.length > SCRATCH_BYTES * 16) scratch.buf = Buffer.allocUnsafe(SCRATCH_BYTES);
  scratch.pos = 0;
  return scratch;
}

/** A copy of what `w` holds, at its size. */
function copyOut(w: Writer): Buffer {
  const out = Buffer.allocUnsafe(w.pos);
  w.buf.copy(out, 0, 0, w.pos);
  return out;
}

/**
 * Encodes a `RegisterResponse`: the record as stored and the revision after. When the stored
 * record is the one the request sent, read by hand (`request.instanceBytes`), the answer's
 * instance is those bytes followed by the fields the node decided: the app name when it was
 * lower-cased, the status and overridden status, the whole lease, both timestamps, and an
 * empty port for each one not sent (the stored record has both). A decoder keeps a field's
 * last value, and a sub-message written again is written whole, so decoders that merge it
 * (as the protobuf spec says) and those that replace it (ts-proto, protobufjs) read the same
 * stored record; a property test decodes both forms. The answer is then one copy instead of
 * ~20 strings encoded again, its URLs rebuilt from their pooled forms: ~1.5 µs of a Register.
 */
export function encodeRegisterResponse({ view, revision, kept }: Registered, request?: RegisterRequest): Buffer {
  const w = scratchWriter();
  const at = w.begin(1, INSTANCE_ROOM);
  const sent = kept ? undefined : (request as Partial<RegisterRequestRead> | undefined)?.instanceBytes;
  if (sent === undefined) instance(w, view);
  else {
    const r = view.record;
    const asSent = request!.instance!;
    w.raw(sent);
    if (r.app !== asSent.app) w.string(1, r.app);
    if (asSent.port === undefined) w.bytes(5, EMPTY);
    if (asSent.securePort === undefined) w.bytes(6, EMPTY);
    w.uint(7, statusToProto(r.status), true);
    w.uint(8, statusToProto(r.overriddenStatus), true);
    leaseAndVersion(w, view, true);
  }
  w.end(at, INSTANCE_ROOM);
  w.uint(2, revision);
  return copyOut(w);
}

/** HeartbeatResponse per status, encoded once: a heartbeat's answer is one of a handful of byte strings. */
const HEARTBEAT_RESPONSES = new Map<pb.InstanceStatus, Buffer>();

/** Encodes a `roster.v1.HeartbeatResponse` (shared bytes: callers must not modify them). */
export function encodeHeartbeatResponse(status: pb.InstanceStatus): Buffer {
  let bytes = HEARTBEAT_RESPONSES.get(status);
  if (bytes === undefined) {
    const w = new Writer(8);
    w.uint(1, status);
    bytes = w.finish();
    HEARTBEAT_RESPONSES.set(status, bytes);
  }
  return bytes;
}

const CHANGE_TYPE: Readonly<Record<Change['type'], pb.ChangeType>> = {
  ADDED: pb.ChangeType.CHANGE_TYPE_ADDED,
  MODIFIED: pb.ChangeType.CHANGE_TYPE_MODIFIED,
  DELETED: pb.ChangeType.CHANGE_TYPE_DELETED,
};
const REMOVAL: Readonly<Record<NonNullable<Change['removal']>, pb.RemovalCause>> = {
  cancelled: pb.RemovalCause.REMOVAL_CAUSE_CANCELLED,
  evicted: pb.RemovalCause.REMOVAL_CAUSE_EVICTED,
};

/** Encodes one `roster.v1.Change` (the instance with its lease times as they are now). */
export function encodeChange(change: Change): Buffer {
  const w = scratchWriter();
  w.uint(1, change.revision);
  w.uint(2, CHANGE_TYPE[change.type]);
  const at = w.begin(3, INSTANCE_ROOM);
  instance(w, change.instance);
  w.end(at, INSTANCE_ROOM);
  if (change.removal !== undefined) w.uint(4, REMOVAL[change.removal]);
  return copyOut(w);
}

/** The most changes of one turn whose encodings are shared; beyond, each watcher encodes its own. */
const MAX_SHARED_CHANGES = 1 << 16;

/**
 * Encoded changes of the current event-loop turn, shared by every watcher that sends them in
 * it: N watchers of one change cost one encoding. Kept until the next turn only, so the
 * change log never pins encoded bytes. Slots are by revision from the turn's first (live
 * changes come in revision order), in arrays kept from turn to turn: a Map cleared every turn
 * allocated a new table each time, in the old generation once the encoder lived there (every
 * Watch write's share of a major GC). A change outside the turn's run (a watcher replaying the
 * change log) is encoded for its watcher alone.
 */
export class ChangeEncoder {
  readonly #changes: (Change | undefined)[] = [];
  readonly #encoded: (Buffer | undefined)[] = [];
  /** The revision at slot 0 this turn; -1 before a change is encoded in it. */
  #base = -1;
  /** Slots this turn may have filled: [0, #used). */
  #used = 0;
  #clearing: NodeJS.Immediate | undefined;
  /** Made once: a closure per turn was garbage of its own. */
  readonly #clear = (): void => {
    this.#clearing = undefined;
    this.#changes.fill(undefined, 0, this.#used);
    this.#encoded.fill(undefined, 0, this.#used);
    this.#base = -1;
    this.#used = 0;
  };

  bytes(change: Change): Buffer {
    if (this.#base < 0) this.#base = change.revision;
    const slot = change.revision - this.#base;
    if (slot < 0 || slot >= MAX_SHARED_CHANGES) return encodeChange(change);
    while (this.#changes.length <= slot) {
      this.#changes.push(undefined);
      this.#encoded.push(undefined);
    }
    if (this.#changes[slot] === change) return this.#encoded[slot]!;
    const encoded = encodeChange(change);
    if (this.#changes[slot] === undefined) {
      this.#changes[slot] = change;
      this.#encoded[slot] = encoded;
      this.#used = Math.max(this.#used, slot + 1);
      this.#clearing ??= setImmediate(this.#clear);
    }
    return encoded;
  }
}

/** What a Watch message carries besides its changes. */
export interface WatchHeader {
  readonly revision: number;
  readonly progress: boolean;
  readonly resyncRequired: boolean;
  readonly nodeId: string;
}

/** A change's tag and length in a `WatchResponse` (an instance stays under 2 MiB: a length takes at most 4 bytes). */
export const CHANGE_FRAMING_BYTES = 5;

/** At least the bytes a `WatchResponse` takes besides its changes. */
export function watchHeaderBytes(nodeId: string): number {
  return 64 + nodeId.length * 3;
}

/** Encodes a `WatchResponse` from already encoded changes. */
export function encodeWatchResponse(changes: readonly Buffer[], header: WatchHeader): Buffer {
  let size = watchHeaderBytes(header.nodeId);
  for (const c of changes) size += c.length + CHANGE_FRAMING_BYTES;
  const w = new Writer(size);
  for (const c of changes) w.bytes(1, c);
  w.uint(2, header.revision);
  w.bool(3, header.progress);
  w.bool(4, header.resyncRequired);
  w.string(5, header.nodeId);
  return w.finish();
}
