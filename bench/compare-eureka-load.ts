/**
 * A load-generator process of `npm run bench -- --compare eureka` (forked by
 * bench/compare-eureka.ts, one or two of them): it runs the jobs its parent sends over IPC
 * against Eureka's REST API (node:http, keep-alive agents) or Roster's gRPC API (RosterClient)
 * and answers what they achieved with its own CPU time, so a client limit shows as such.
 * The register and renew rows' unary calls are replayed by this process's bench/replay child
 * (Go) from requests encoded here, untimed, by a `prepare` job just before: a node:http or
 * grpc-js caller would take a whole core at these rates. Their CPU time includes the child's.
 *   ← {id, job}                                   runs one job
 *   → {id, ok: true, result} | {id, ok: false, error}
 * It exits when the parent disconnects. Every job is bounded in time or count.
 */
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:http2';
import { gunzipSync, gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { HeartbeatStream, RosterClient } from '../src/client/index.js';
import { Instance } from '../src/gen/roster/v1/instance.js';
import { RegistryServiceService } from '../src/gen/roster/v1/registry_service.js';
import { eurekaBody, grpcInstance, recordKey } from './compare-eureka-records.js';
import { httpFrame, PreparedReplay, requestsFor, type HttpFrame, type ReplayResult, type ReplayTarget } from './replay.js';

/** Which operations a job repeats: over `[from, to)` once each, or over a pool for `durationMs`. */
export type Span =
  | { readonly from: number; readonly to: number }
  /** Indices `(offset + k) % pool`, so load processes sharing a pool start apart. */
  | TimedSpan;
export type TimedSpan = { readonly pool: number; readonly durationMs: number; readonly offset: number };

/** The unary operations of the register and renew rows (REST: Eureka's API, on Eureka or Roster's face). */
export type UnaryOperation = 'rest-register' | 'rest-renew' | 'grpc-register' | 'grpc-heartbeat';

/** A register or renew row's calls, replayed by bench/replay; `target` is a REST base URL or a gRPC address. */
export type ReplayJob = {
  readonly kind: 'replay';
  readonly operation: UnaryOperation;
  readonly target: string;
  readonly prefix: string;
  readonly span: TimedSpan;
  readonly concurrency: number;
  /** rest-renew: the registrations' lastDirtyTimestamp, sent with each renewal. */
  readonly lastDirtyTimestamp?: number;
};

export type Job =
  /** Registers over node:http, each index of the span once (fills). */
  | { readonly kind: 'rest-register'; readonly base: string; readonly prefix: string; readonly span: Span; readonly concurrency: number }
  | ReplayJob
  /** Encodes a replay job's requests and has the replay child load them; that job must come next. `ok`: requests encoded. */
  | { readonly kind: 'prepare'; readonly job: ReplayJob }
  | {
      readonly kind: 'grpc-stream';
      readonly address: string;
      readonly prefix: string;
      readonly span: Span;
      readonly concurrency: number;
      /** Renewals per stream message, and messages in flight. */
      readonly maxBatch: number;
      readonly window: number;
    }
  /** `times` GETs one after the other; `marker`: count the bodies that contain it. */
  | { readonly kind: 'rest-get'; readonly url: string; readonly gzip: boolean; readonly times: number; readonly marker?: string }
  /** `times` whole ListApplications reads (raw HTTP/2), asking for gzip message compression or not. */
  | { readonly kind: 'grpc-list'; readonly address: string; readonly gzip: boolean; readonly times: number };

/**
 * A job's outcome: as a replay child reports one, with `cpuSeconds` this process's CPU time
 * during the job (plus its replay child's, for replayed jobs) and `latencies` every operation's
 * (reads: each read's), and for reads what came back.
 */
export interface JobResult extends ReplayResult {
  /** Reads: bytes received per read (on the wire: compressed when the answer was). */
  readonly bytes?: number[];
  /** Reads: the content-encoding (REST) or grpc-encoding (gRPC) the server answered with. */
  readonly encoding?: string;
  /** rest-get with a marker: how many bodies contained it. */
  readonly markerHits?: number;
}

export type LoadRequest = { readonly id: number; readonly job: Job };
export type LoadReply = { readonly id: number; readonly ok: true; readonly result: JobResult } | { readonly id: number; readonly ok: false; readonly error: string };

const REQUEST_TIMEOUT_MS = 60_000;
const CHANNEL_OPTIONS = { 'grpc.per_rpc_retry_buffer_size': 0 } as const;

const agents = new Map<string, Agent>();
const clients = new Map<string, RosterClient>();
const replay = new PreparedReplay();

function agentFor(base: string, sockets: number): Agent {
  const key = `${base}#${sockets}`;
  let agent = agents.get(key);
  if (!agent) agents.set(key, (agent = new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets })));
  return agent;
}

function clientFor(address: string): RosterClient {
  let client = clients.get(address);
  if (!client) clients.set(address, (client = new RosterClient(address, { channelOptions: CHANNEL_OPTIONS, timeoutMs: REQUEST_TIMEOUT_MS })));
  return client;
}

interface HttpAnswer {
  readonly status: number;
  readonly body: Buffer;
  readonly encoding: string | undefined;
}

/**
 * One HTTP exchange, the whole body read (wire bytes, not decompressed). A request sent on a
 * kept-alive socket that the server closed as idle at that very moment fails with ECONNRESET
 * ("socket hang up"); it is sent once more on a fresh socket, as Node's documentation advises
 * (`request.reusedSocket`). Every request here is safe to repeat (reads, and registrations and
 * renewals of the same record).
 */
export function http(agent: Agent | undefined, method: string, url: string, body?: string, headers: Record<string, string> = {}, retry = true): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method,
        ...(agent ? { agent } : {}),
        headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }) },
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), encoding: res.headers['content-encoding'] }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer in ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (retry && req.reusedSocket && err.code === 'ECONNRESET') resolve(http(agent, method, url, body, headers, false));
      else reject(err);
    });
    req.end(body);
  });
}

type Operation = (i: number) => Promise<boolean>;

/** Keeps `concurrency` operations in flight over the span; bounded by its count or its duration. */
async function drive(span: Span, concurrency: number, operation: Operation): Promise<JobResult> {
  const latencies: number[] = [];
  let ok = 0;
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  const start = performance.now();
  const cpu = process.cpuUsage();
  const stopAt = 'durationMs' in span ? start + span.durationMs : Number.POSITIVE_INFINITY;
  const take = (): number | undefined => {
    if ('durationMs' in span) return performance.now() < stopAt ? (span.offset + next++) % span.pool : undefined;
    const i = span.from + next++;
    return i < span.to ? i : undefined;
  };
  const worker = async (): Promise<void> => {
    for (let i = take(); i !== undefined; i = take()) {
      const began = performance.now();
      let succeeded = false;
      try {
        succeeded = await operation(i);
        if (!succeeded) firstError ??= `operation ${i} refused`;
      } catch (err) {
        firstError ??= err instanceof Error ? err.message : String(err);
      }
      latencies.push(performance.now() - began);
      if (succeeded) ok++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return finish(start, cpu, { ok, failed, latencies, ...(firstError === undefined ? {} : { firstError }) });
}

function finish(start: number, cpu: NodeJS.CpuUsage, result: Omit<JobResult, 'seconds' | 'cpuSeconds'>): JobResult {
  const used = process.cpuUsage(cpu);
  return { ...result, seconds: (performance.now() - start) / 1000, cpuSeconds: (used.user + used.system) / 1e6 };
}

/** Eureka's register of the `i`-th record (`POST apps/APP`), as node:http sends it and a replay frame carries it. */
function restRegister(i: number, prefix: string): HttpFrame {
  const { app } = recordKey(i, prefix);
  return { method: 'POST', path: `/apps/${app}`, headers: { 'content-type': 'application/json' }, body: eurekaBody(i, prefix, Date.now()) };
}

/** The request of the `k`-th call of a replay job, and where such requests go. */
function replayRequests(job: ReplayJob): { target: ReplayTarget; frame: (k: number) => Uint8Array } {
  const indexOf = (k: number): number => (job.span.offset + k) % job.span.pool;
  switch (job.operation) {
    case 'rest-register':
      return { target: { kind: 'http', target: job.target }, frame: (k) => httpFrame(restRegister(indexOf(k), job.prefix)) };
    case 'rest-renew':
      return {
        target: { kind: 'http', target: job.target },
        frame: (k) => {
          const { app, instanceId } = recordKey(indexOf(k), job.prefix);
          const path = `/apps/${app}/${encodeURIComponent(instanceId)}?status=UP&lastDirtyTimestamp=${job.lastDirtyTimestamp ?? 0}`;
          return httpFrame({ method: 'PUT', path, headers: {}, body: '' });
        },
      };
    case 'grpc-register': {
      const m = RegistryServiceService.register;
      // As RosterClient.register sends it.
      return { target: { kind: 'grpc', target: job.target, method: m.path }, frame: (k) => m.requestSerialize({ instance: Instance.fromPartial(grpcInstance(indexOf(k), job.prefix, Date.now())) }) };
    }
    case 'grpc-heartbeat': {
      const m = RegistryServiceService.heartbeat;
      return {
        target: { kind: 'grpc', target: job.target, method: m.path },
        frame: (k) => {
          const { app, instanceId } = recordKey(indexOf(k), job.prefix);
          return m.requestSerialize({ app, instanceId, lastDirtyTimestamp: 0 });
        },
      };
    }
  }
}

/** A prepared job is matched with the job that runs it by its JSON. */
const keyOf = (job: ReplayJob): string => JSON.stringify(job);

async function prepare(job: ReplayJob): Promise<JobResult> {
  const start = performance.now();
  const cpu = process.cpuUsage();
  const { target, frame } = replayRequests(job);
  const encoded = await replay.prepare(keyOf(job), target, requestsFor(job.span.durationMs), frame);
  return finish(start, cpu, { ok: encoded, failed: 0, latencies: [] });
}

/** Runs a prepared job in the replay child; its CPU time is this process's plus the child's. */
async function replayed(job: ReplayJob): Promise<JobResult> {
  const cpu = process.cpuUsage();
  const result = await replay.run(keyOf(job), job.concurrency, job.span.durationMs);
  const used = process.cpuUsage(cpu);
  return {
    ok: result.ok,
    failed: result.failed,
    seconds: result.seconds,
    cpuSeconds: (used.user + used.system) / 1e6 + result.cpuSeconds,
    latencies: result.latencies,
    ...(result.firstError === undefined ? {} : { firstError: result.firstError }),
  };
}

async function run(job: Job): Promise<JobResult> {
  switch (job.kind) {
    case 'rest-register': {
      const agent = agentFor(job.base, job.concurrency);
      return drive(job.span, job.concurrency, async (i) => {
        const request = restRegister(i, job.prefix);
        const answer = await http(agent, request.method, `${job.base}${request.path}`, request.body);
        if (answer.status !== 204) throw new Error(`register answered ${answer.status}: ${answer.body.toString().slice(0, 200)}`);
        return true;
      });
    }
    case 'prepare':
      return prepare(job.job);
    case 'replay':
      return replayed(job);
    case 'grpc-stream': {
      const stream = new HeartbeatStream(clientFor(job.address), { maxBatch: job.maxBatch, window: job.window });
      try {
        return await drive(job.span, job.concurrency, (i) => {
          const { app, instanceId } = recordKey(i, job.prefix);
          return stream.heartbeat(app, instanceId).then((r) => r.code === grpc.status.OK);
        });
      } finally {
        await stream.close();
      }
    }
    case 'rest-get':
      return restGets(job);
    case 'grpc-list':
      return grpcLists(job);
  }
}

async function restGets(job: Extract<Job, { kind: 'rest-get' }>): Promise<JobResult> {
  const agent = agentFor(new URL(job.url).origin, 1);
  const headers = { accept: 'application/json', ...(job.gzip ? { 'accept-encoding': 'gzip' } : {}) };
  const latencies: number[] = [];
  const bytes: number[] = [];
  let encoding: string | undefined;
  let markerHits = 0;
  let failed = 0;
  let firstError: string | undefined;
  const start = performance.now();
  const cpu = process.cpuUsage();
  for (let n = 0; n < job.times; n++) {
    const began = performance.now();
    const answer = await http(agent, 'GET', job.url, undefined, headers);
    latencies.push(performance.now() - began);
    if (answer.status !== 200) {
      failed++;
      firstError ??= `GET answered ${answer.status}`;
      continue;
    }
    bytes.push(answer.body.length);
    encoding = answer.encoding ?? 'identity';
    if (job.marker !== undefined) {
      const text = (answer.encoding === 'gzip' ? gunzipSync(answer.body) : answer.body).toString('utf8');
      if (text.includes(job.marker)) markerHits++;
    }
  }
  return finish(start, cpu, {
    ok: job.times - failed,
    failed,
    latencies,
    bytes,
    ...(encoding === undefined ? {} : { encoding }),
    ...(job.marker === undefined ? {} : { markerHits }),
    ...(firstError === undefined ? {} : { firstError }),
  });
}

/**
 * Whole-registry reads over a raw HTTP/2 gRPC call (node:http2), so that the wire is visible:
 * grpc-js' client hides the response's `grpc-encoding` header and decompresses before any
 * application code sees a message. With `gzip`, the request is sent as gzip clients send it
 * (`grpc-encoding: gzip`, the message compressed and flagged) and the server may answer in
 * gzip; the answer's `grpc-encoding` header says whether it did. `bytes` are on the wire.
 */
async function grpcLists(job: Extract<Job, { kind: 'grpc-list' }>): Promise<JobResult> {
  const session = connect(`http://${job.address}`);
  session.on('error', () => undefined);
  const empty = Buffer.alloc(0); // ListApplicationsRequest with every field at its default
  const message = job.gzip ? gzipSync(empty) : empty;
  const frame = Buffer.alloc(5 + message.length);
  frame[0] = job.gzip ? 1 : 0;
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  const latencies: number[] = [];
  const bytes: number[] = [];
  let encoding = 'identity';
  const start = performance.now();
  const cpu = process.cpuUsage();
  try {
    for (let n = 0; n < job.times; n++) {
      const began = performance.now();
      const size = await new Promise<number>((resolve, reject) => {
        const stream = session.request({
          ':method': 'POST',
          ':path': '/roster.v1.RegistryService/ListApplications',
          'content-type': 'application/grpc',
          te: 'trailers',
          'grpc-accept-encoding': 'identity,gzip',
          ...(job.gzip ? { 'grpc-encoding': 'gzip' } : {}),
        });
        let received = 0;
        stream.setTimeout(REQUEST_TIMEOUT_MS, () => stream.close());
        stream.on('response', (headers) => (encoding = String(headers['grpc-encoding'] ?? 'identity')));
        stream.on('trailers', (trailers) => {
          if (String(trailers['grpc-status']) !== '0') reject(new Error(`ListApplications: grpc-status ${String(trailers['grpc-status'])} ${String(trailers['grpc-message'] ?? '')}`));
        });
        stream.on('data', (chunk: Buffer) => (received += chunk.length));
        stream.on('error', reject);
        stream.on('close', () => resolve(received));
        stream.end(frame);
      });
      latencies.push(performance.now() - began);
      bytes.push(size);
    }
  } finally {
    session.close();
  }
  return finish(start, cpu, { ok: job.times, failed: 0, latencies, bytes, encoding });
}

process.on('message', (message: LoadRequest) => {
  run(message.job).then(
    (result) => process.send?.({ id: message.id, ok: true, result } satisfies LoadReply),
    (err: unknown) => process.send?.({ id: message.id, ok: false, error: err instanceof Error ? err.message : String(err) } satisfies LoadReply),
  );
});
process.on('disconnect', () => {
  for (const client of clients.values()) void client.close();
  for (const agent of agents.values()) agent.destroy();
  replay.close();
  process.exit(0);
});
