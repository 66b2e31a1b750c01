/**
 * A load process of the Roster-vs-etcd comparison, forked by bench/compare/load-pool.ts and
 * driven over IPC (bench/compare/jobs.ts). Both systems are called the same way: messages
 * (de)serialized by @grpc/proto-loader with the same options, from Roster's protos and etcd's
 * (trimmed, bench/etcd/). The unary rows (register, heartbeat) are replayed by this process's
 * bench/replay child (Go) from requests encoded here beforehand, since a grpc-js caller would
 * take a whole core at these rates; so are the watch rows' writes, timed to their events by the
 * same child, since this process's own collection pauses (5-20 ms, several a second) were most
 * of either system's p99 there. Everything else uses plain grpc-js channels with the same
 * options. Every loop stops at its deadline, and every wait has a bound.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { benchInstance, benchKey } from '../instances.js';
import { PreparedReplay, requestsFor, type ReplayTarget, type WatchSpec } from '../replay.js';
import { prefixEnd } from './stats.js';
import type { CountResult, Job, JobResult, Keys, ReadResult, WatchResult, WorkerMessage, WorkerRequest } from './jobs.js';

const MiB = 1024 * 1024;
const PROTO_DIR = fileURLToPath(new URL('../../proto', import.meta.url));
const COMPARE_DIR = fileURLToPath(new URL('.', import.meta.url));
const ETCD_DIR = fileURLToPath(new URL('../etcd', import.meta.url));

/** int64 as strings: etcd lease ids use all 63 bits. Enums by name, no default values filled in. */
const LOADER_OPTIONS: protoLoader.Options = { keepCase: false, longs: String, enums: String, defaults: false, oneofs: true };

/**
 * The same for both systems: no per-call retry buffer (grpc-js copies it per streamed message),
 * room for etcd's single Range answer of 100k records, and the 8 MiB HTTP/2 window RosterClient uses.
 */
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.per_rpc_retry_buffer_size': 0,
  'grpc.max_receive_message_length': 512 * MiB,
  'grpc-node.flow_control_window': 8 * MiB,
};
/** A lease as long as the benchmark instances' (bench/instances.ts): nothing expires during a run. */
const LEASE_TTL_SECONDS = 3_600;
const CALL_DEADLINE_MS = 30_000;
const READ_DEADLINE_MS = 120_000;
/** After a timed window: how long answers still in flight are waited for. */
const DRAIN_MS = 5_000;
/** Open-loop pacing: each tick sends what is due since the start. */
const TICK_MS = 5;
/** Background renewals: per stream, beyond this many un-acknowledged renewals due ones are skipped. */
const MAX_PACED_OUTSTANDING = 20_000;

type Message = Record<string, unknown>;
type Method = protoLoader.MethodDefinition<Message, Message>;

const rosterDefinition = protoLoader.loadSync(['roster/v1/registry_service.proto', 'codec.proto'], {
  ...LOADER_OPTIONS,
  includeDirs: [PROTO_DIR, COMPARE_DIR],
});
const etcdDefinition = protoLoader.loadSync('rpc.proto', { ...LOADER_OPTIONS, includeDirs: [ETCD_DIR] });

function method(definition: protoLoader.PackageDefinition, service: string, name: string): Method {
  const found = (definition[service] as protoLoader.ServiceDefinition | undefined)?.[name];
  if (found === undefined) throw new Error(`no method ${service}/${name} in the loaded protos`);
  return found as unknown as Method;
}

const roster = {
  register: method(rosterDefinition, 'roster.v1.RegistryService', 'Register'),
  heartbeat: method(rosterDefinition, 'roster.v1.RegistryService', 'Heartbeat'),
  heartbeats: method(rosterDefinition, 'roster.v1.RegistryService', 'Heartbeats'),
  watch: method(rosterDefinition, 'roster.v1.RegistryService', 'Watch'),
  list: method(rosterDefinition, 'roster.v1.RegistryService', 'ListApplications'),
};
const etcd = {
  put: method(etcdDefinition, 'etcdserverpb.KV', 'Put'),
  range: method(etcdDefinition, 'etcdserverpb.KV', 'Range'),
  watch: method(etcdDefinition, 'etcdserverpb.Watch', 'Watch'),
  grant: method(etcdDefinition, 'etcdserverpb.Lease', 'LeaseGrant'),
  keepAlive: method(etcdDefinition, 'etcdserverpb.Lease', 'LeaseKeepAlive'),
};
/** roster.v1.Instance ↔ bytes, with proto-loader's codec (see codec.proto): an etcd value. */
const instanceCodec = method(rosterDefinition, 'roster.bench.InstanceCodec', 'Encode');

/** All keys of an etcd registry live under this prefix: /registry/<app>/<instance id>. */
const ETCD_PREFIX = '/registry/';

/** One channel per server address for the life of the process, as a client application keeps. */
const clients = new Map<string, grpc.Client>();
function clientFor(address: string): grpc.Client {
  let client = clients.get(address);
  if (client === undefined) {
    client = new grpc.Client(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    clients.set(address, client);
  }
  return client;
}

function unary(address: string, m: Method, request: Message, deadlineMs = CALL_DEADLINE_MS): Promise<Message> {
  return new Promise((resolve, reject) => {
    clientFor(address).makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, request, { deadline: Date.now() + deadlineMs }, (err, response) => {
      if (err !== null || response === undefined) reject(err ?? new Error('no response'));
      else resolve(response);
    });
  });
}

function etcdKey(app: string, instanceId: string): Buffer {
  return Buffer.from(`${ETCD_PREFIX}${app}/${instanceId}`);
}

type BenchRecord = Message & { app: string; instanceId: string };

/** The call that writes `instance` the way each system stores it: Roster Register, etcd Put. */
function recordRequest(system: 'roster' | 'etcd', instance: BenchRecord, lease: string | undefined): { method: Method; request: Message } {
  if (system === 'roster') return { method: roster.register, request: { instance } };
  return {
    method: etcd.put,
    request: { key: etcdKey(instance.app, instance.instanceId), value: instanceCodec.requestSerialize(instance), ...(lease === undefined ? {} : { lease }) },
  };
}

function writeRecord(system: 'roster' | 'etcd', address: string, instance: BenchRecord, lease: string | undefined): Promise<Message> {
  const { method: m, request } = recordRequest(system, instance, lease);
  return unary(address, m, request);
}

function benchRecord(i: number, prefix: string): BenchRecord {
  const instance = benchInstance(i, prefix);
  return { ...instance, app: instance.app!, instanceId: instance.instanceId! } as BenchRecord;
}

function etcdLeases(keys: Keys): readonly string[] {
  if (keys.system !== 'etcd' || keys.leases.length === 0) throw new Error('an etcd job needs granted leases');
  return keys.leases;
}

function rosterPool(keys: Keys): { prefix: string; size: number } {
  if (keys.system !== 'roster' || keys.size <= 0) throw new Error('a Roster job needs a registered pool');
  return keys;
}

const replay = new PreparedReplay();

/** A prepared job is matched with the job that runs it by its JSON. */
const keyOf = (job: Job): string => JSON.stringify(job);

/** What a replayed job sends: its target, how many requests and the k-th one's bytes; undefined for other jobs. */
function replayedRequests(job: Job): { target: ReplayTarget; count: number; frame: (k: number) => Uint8Array } | undefined {
  switch (job.type) {
    case 'register': {
      // Distinct records, k-th with the k-th instance of the prefix, as the grpc-js callers wrote them.
      const leases = job.system === 'etcd' ? etcdLeases(job.keys) : undefined;
      const m = job.system === 'roster' ? roster.register : etcd.put;
      return {
        target: { kind: 'grpc', target: job.address, method: m.path },
        count: requestsFor(job.durationMs),
        frame: (k) => m.requestSerialize(recordRequest(job.system, benchRecord(k, job.prefix), leases?.[k % leases.length]).request),
      };
    }
    case 'watch-latency': {
      // Write k: a new instance `w-<k>` of the watched app (write 0 proves the watch live).
      const leases = job.system === 'etcd' ? etcdLeases(job.keys) : undefined;
      const m = job.system === 'roster' ? roster.register : etcd.put;
      return {
        target: { kind: 'grpc', target: job.writeAddress, method: m.path },
        count: Math.ceil((job.perSecond * job.durationMs) / 1000) + 2,
        frame: (k) => {
          const record = { ...benchRecord(k, job.app), app: job.app, instanceId: `w-${k}` };
          return m.requestSerialize(recordRequest(job.system, record, leases?.[k % leases.length]).request);
        },
      };
    }
    case 'heartbeat': {
      // Renewing the pool's keys in turn: each key's request is encoded once and repeated.
      const pool = rosterPool(job.keys);
      const encoded = Array.from({ length: pool.size }, (_, i) => {
        const { app, instanceId } = benchKey(i, pool.prefix);
        return roster.heartbeat.requestSerialize({ app, instanceId });
      });
      return { target: { kind: 'grpc', target: job.address, method: roster.heartbeat.path }, count: requestsFor(job.durationMs), frame: (k) => encoded[k % pool.size]! };
    }
    default:
      return undefined;
  }
}

async function prepare(job: Job): Promise<CountResult> {
  const start = performance.now();
  const requests = replayedRequests(job);
  const encoded = requests === undefined ? 0 : await replay.prepare(keyOf(job), requests.target, requests.count, requests.frame);
  return { ok: encoded, failed: 0, seconds: (performance.now() - start) / 1000 };
}

/** Runs a prepared register or heartbeat job in the replay child. */
async function replayed(job: Extract<Job, { type: 'register' | 'heartbeat' }>): Promise<CountResult> {
  const result = await replay.run(keyOf(job), job.concurrency, job.durationMs);
  return {
    ok: result.ok,
    failed: result.failed,
    seconds: result.seconds,
    replayCpuSeconds: result.cpuSeconds,
    ...(result.firstError === undefined ? {} : { firstError: result.firstError }),
  };
}

/** Builds renewal stream messages and reads their answers, for either system. */
interface RenewalCodec {
  readonly method: Method;
  /** The message renewing keys next … next + perMessage - 1 (modulo the pool). */
  message(next: number, perMessage: number, batchId: number): Message;
  /** Renewals an answer acknowledges: [ok, failed]. */
  acknowledged(answer: Message): [number, number];
}

function renewalCodec(system: 'roster' | 'etcd', keys: Keys): RenewalCodec {
  if (system === 'roster') {
    const pool = rosterPool(keys);
    return {
      method: roster.heartbeats,
      message: (next, perMessage, batchId) => ({
        batchId: String(batchId),
        heartbeats: Array.from({ length: perMessage }, (_, k) => {
          const { app, instanceId } = benchKey((next + k) % pool.size, pool.prefix);
          return { app, instanceId };
        }),
      }),
      acknowledged: (answer) => {
        const results = (answer['results'] as { code?: number }[] | undefined) ?? [];
        const ok = results.filter((r) => (r.code ?? 0) === 0).length;
        return [ok, results.length - ok];
      },
    };
  }
  const leases = etcdLeases(keys);
  return {
    method: etcd.keepAlive,
    message: (next) => ({ ID: leases[next % leases.length] }),
    // etcd answers TTL -1 for a lease it does not know.
    acknowledged: (answer) => (Number(answer['TTL'] ?? 0) > 0 ? [1, 0] : [0, 1]),
  };
}

/**
 * `streams` renewal streams for `durationMs`, each keeping at most `window` renewals
 * un-acknowledged: a message is written whenever the window has room, answers free it.
 * Renewals acknowledged before the deadline count.
 */
async function renewals(job: Extract<Job, { type: 'renewals' }>): Promise<CountResult> {
  const codec = renewalCodec(job.system, job.keys);
  const client = clientFor(job.address);
  const start = performance.now();
  const stopAt = start + job.durationMs;
  let ok = 0;
  let failed = 0;
  let firstError: string | undefined;
  const stream = (index: number): Promise<void> =>
    new Promise((resolve) => {
      const call = client.makeBidiStreamRequest(codec.method.path, codec.method.requestSerialize, codec.method.responseDeserialize, {
        deadline: Date.now() + job.durationMs + DRAIN_MS + CALL_DEADLINE_MS,
      });
      let next = index * 7_919;
      let batchId = 0;
      let outstanding = 0;
      let ended = false;
      const end = (): void => {
        if (ended) return;
        ended = true;
        clearTimeout(guard);
        call.end();
        call.cancel();
        resolve();
      };
      const guard = setTimeout(end, job.durationMs + DRAIN_MS);
      const fill = (): void => {
        while (!ended && outstanding + job.perMessage <= job.window && performance.now() < stopAt) {
          call.write(codec.message(next, job.perMessage, batchId++));
          next += job.perMessage;
          outstanding += job.perMessage;
        }
      };
      call.on('data', (answer: Message) => {
        const [good, bad] = codec.acknowledged(answer);
        outstanding -= good + bad;
        if (performance.now() < stopAt) {
          ok += good;
          failed += bad;
          fill();
        } else {
          end();
        }
      });
      call.on('error', (err: Error) => {
        if (!ended) firstError ??= err.message;
        end();
      });
      call.on('end', end);
      fill();
    });
  await Promise.all(Array.from({ length: job.streams }, (_, i) => stream(i)));
  return { ok, failed, seconds: job.durationMs / 1000, ...(firstError === undefined ? {} : { firstError }) };
}

/** Renewals paced at `perSecond` in total over one stream per address: background load, not a measurement. */
async function pacedRenewals(job: Extract<Job, { type: 'paced-renewals' }>): Promise<CountResult> {
  const codec = renewalCodec(job.system, job.keys);
  let ok = 0;
  let failed = 0;
  let skipped = 0;
  let firstError: string | undefined;
  const calls = job.addresses.map((address) => {
    const call = clientFor(address).makeBidiStreamRequest(codec.method.path, codec.method.requestSerialize, codec.method.responseDeserialize, {
      deadline: Date.now() + job.durationMs + DRAIN_MS + CALL_DEADLINE_MS,
    });
    const state = { call, outstanding: 0 };
    call.on('data', (answer: Message) => {
      const [good, bad] = codec.acknowledged(answer);
      state.outstanding -= good + bad;
      ok += good;
      failed += bad;
    });
    call.on('error', (err: Error) => {
      firstError ??= err.message;
    });
    return state;
  });
  const start = performance.now();
  let sentMessages = 0;
  let next = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - start;
      if (elapsed >= job.durationMs) {
        clearInterval(timer);
        resolve();
        return;
      }
      const due = Math.floor((elapsed * job.perSecond) / 1000 / job.perMessage);
      for (; sentMessages < due; sentMessages++) {
        const state = calls[sentMessages % calls.length]!;
        if (state.outstanding > MAX_PACED_OUTSTANDING) {
          skipped += job.perMessage;
          continue;
        }
        state.call.write(codec.message(next, job.perMessage, sentMessages));
        next += job.perMessage;
        state.outstanding += job.perMessage;
      }
    }, TICK_MS);
  });
  for (const { call } of calls) {
    call.end();
    call.cancel();
  }
  return { ok, failed, skipped, seconds: job.durationMs / 1000, ...(firstError === undefined ? {} : { firstError }) };
}

/**
 * The watch a write → event job times its writes against: Roster's Watch filtered by the app
 * (established by its first message, a progress message once subscribed), or an etcd prefix
 * watch (established by `created`), and where each message carries instance ids. On etcd the id
 * is inside the value, an encoded Instance: a registry client on etcd learns the instance only by
 * decoding the value, as Roster's watcher does the change.
 */
function watchSpec(job: Extract<Job, { type: 'watch-latency' }>): WatchSpec {
  if (job.system === 'roster') {
    return {
      target: job.watchAddress,
      method: roster.watch.path,
      request: roster.watch.requestSerialize({ app: job.app }),
      clientStreams: false,
      readyField: 0,
      idPath: [1, 3, 2], // WatchResponse.changes → Change.instance → Instance.instance_id
      perSecond: job.perSecond,
    };
  }
  const prefix = Buffer.from(`${ETCD_PREFIX}${job.app}/`);
  return {
    target: job.watchAddress,
    method: etcd.watch.path,
    request: etcd.watch.requestSerialize({ createRequest: { key: prefix, rangeEnd: prefixEnd(prefix) } }),
    clientStreams: true,
    readyField: 3, // WatchResponse.created
    idPath: [11, 2, 5, 2], // WatchResponse.events → Event.kv → KeyValue.value → Instance.instance_id
    perSecond: job.perSecond,
  };
}

/**
 * Open-loop writes paced at `perSecond`, each a new instance `w-<k>` of the app, timed from its
 * send to its event on one watch, both by this process's replay child (Go; see
 * bench/replay/watch.go): its collector's pauses are well under a millisecond, where this
 * process's were 5-20 ms several times a second and set the p99 of both systems.
 */
async function watchLatency(job: Extract<Job, { type: 'watch-latency' }>): Promise<WatchResult> {
  const result = await replay.watch(keyOf(job), watchSpec(job), job.durationMs);
  return {
    ok: result.ok,
    failed: result.failed,
    seconds: result.seconds,
    issued: result.issued,
    skipped: result.skipped,
    events: result.events,
    latenciesMs: result.latencies,
    sustainedPerSecond: result.sustainedPerSecond,
    replayCpuSeconds: result.cpuSeconds,
    ...(result.firstError === undefined ? {} : { firstError: result.firstError }),
  };
}

/** Registers instances [from, to), `concurrency` at a time; etcd grants each its own lease first. */
async function fill(job: Extract<Job, { type: 'fill' }>): Promise<CountResult> {
  let next = job.from;
  let ok = 0;
  let failed = 0;
  let firstError: string | undefined;
  const start = performance.now();
  const worker = async (): Promise<void> => {
    while (next < job.to) {
      const i = next++;
      try {
        let lease: string | undefined;
        if (job.system === 'etcd') lease = String((await unary(job.address, etcd.grant, { TTL: LEASE_TTL_SECONDS }))['ID']);
        await writeRecord(job.system, job.address, benchRecord(i, job.prefix), lease);
        ok++;
      } catch (err) {
        failed++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, worker));
  return { ok, failed, seconds: (performance.now() - start) / 1000, ...(firstError === undefined ? {} : { firstError }) };
}

async function grant(job: Extract<Job, { type: 'grant' }>): Promise<string[]> {
  const leases: string[] = [];
  let remaining = job.count;
  const worker = async (): Promise<void> => {
    while (remaining > 0) {
      remaining--;
      const answer = await unary(job.address, etcd.grant, { TTL: LEASE_TTL_SECONDS });
      leases.push(String(answer['ID']));
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, worker));
  return leases;
}

const EMPTY = Buffer.alloc(0);
const identity = (bytes: Buffer): Buffer => bytes;

/** One whole-registry read: Roster's ListApplications stream or one etcd Range over the prefix. */
async function readOnce(job: Extract<Job, { type: 'full-read' }>): Promise<{ bytes: number; records: number; valueDecodeMs?: number }> {
  const client = clientFor(job.address);
  const options = { deadline: Date.now() + READ_DEADLINE_MS };
  if (job.system === 'roster') {
    const m = roster.list;
    const call = job.decode
      ? client.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, {}, options)
      : client.makeServerStreamRequest(m.path, identity, identity, EMPTY, options);
    let bytes = 0;
    let records = 0;
    for await (const chunk of call as AsyncIterable<Message | Buffer>) {
      if (Buffer.isBuffer(chunk)) bytes += chunk.length;
      else records += (chunk['instances'] as unknown[] | undefined)?.length ?? 0;
    }
    return { bytes, records };
  }
  const prefix = Buffer.from(ETCD_PREFIX);
  const request = { key: prefix, rangeEnd: prefixEnd(prefix) };
  if (!job.decode) {
    const answer = await new Promise<Buffer>((resolve, reject) => {
      client.makeUnaryRequest(etcd.range.path, identity, identity, etcd.range.requestSerialize(request), options, (err, response) => {
        if (err !== null || response === undefined) reject(err ?? new Error('no response'));
        else resolve(response);
      });
    });
    return { bytes: answer.length, records: 0 };
  }
  const answer = await unary(job.address, etcd.range, request, READ_DEADLINE_MS);
  const kvs = (answer['kvs'] as { value?: Buffer }[] | undefined) ?? [];
  const decodeStart = performance.now();
  let records = 0;
  for (const kv of kvs) {
    instanceCodec.responseDeserialize(kv.value ?? EMPTY);
    records++;
  }
  return { bytes: 0, records, valueDecodeMs: performance.now() - decodeStart };
}

/** One untimed read, then `times` timed; a decoded read must return every record. */
async function fullRead(job: Extract<Job, { type: 'full-read' }>): Promise<ReadResult> {
  const check = (got: { records: number }): void => {
    if (job.decode && got.records !== job.expected) throw new Error(`${job.system} read returned ${got.records} of ${job.expected} records`);
  };
  check(await readOnce(job));
  const durationsMs: number[] = [];
  const valueDecodeMs: number[] = [];
  let last = { bytes: 0, records: 0 };
  for (let i = 0; i < job.times; i++) {
    const start = performance.now();
    const got = await readOnce(job);
    durationsMs.push(performance.now() - start);
    check(got);
    if (got.valueDecodeMs !== undefined) valueDecodeMs.push(got.valueDecodeMs);
    last = got;
  }
  return { durationsMs, bytes: last.bytes, records: last.records, ...(valueDecodeMs.length > 0 ? { valueDecodeMs } : {}) };
}

async function run(job: Job): Promise<JobResult> {
  switch (job.type) {
    case 'prepare':
      return { type: 'count', result: await prepare(job.job) };
    case 'register':
    case 'heartbeat':
      return { type: 'count', result: await replayed(job) };
    case 'renewals':
      return { type: 'count', result: await renewals(job) };
    case 'paced-renewals':
      return { type: 'count', result: await pacedRenewals(job) };
    case 'watch-latency':
      return { type: 'watch', result: await watchLatency(job) };
    case 'fill':
      return { type: 'count', result: await fill(job) };
    case 'grant':
      return { type: 'leases', leases: await grant(job) };
    case 'full-read':
      return { type: 'read', result: await fullRead(job) };
  }
}

const send = (message: WorkerMessage): void => {
  process.send?.(message);
};

if (process.send !== undefined) {
  process.on('message', (request: WorkerRequest) => {
    run(request.job).then(
      (result) => send({ id: request.id, ok: true, result }),
      (err: unknown) => send({ id: request.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
    );
  });
  process.on('disconnect', () => {
    for (const client of clients.values()) client.close();
    replay.close();
    process.exit(0);
  });
  send({ type: 'ready' });
}
