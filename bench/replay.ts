/**
 * The TypeScript side of bench/replay (Go): builds the binary when it is missing or older than
 * its sources, runs one child per load process, writes the requests a job replays (frames of a
 * uint32 big-endian length, then the bytes; for HTTP each frame is JSON {method, path, headers,
 * body}) and has the child load them before the timed window, so that encoding, writing and
 * parsing never fall inside it. A grpc-js caller costs ~130 µs of CPU per unary call on this
 * machine kind and the replay child ~25 µs, so the load process no longer starves the server.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const SOURCE_DIR = fileURLToPath(new URL('./replay', import.meta.url));
/** Gitignored: built here by {@link replayBinary}. */
export const REPLAY_BINARY = join(SOURCE_DIR, 'bin', 'replay');
/** A first build downloads grpc-go through the module proxy. */
const BUILD_TIMEOUT_MS = 300_000;
/** Reading and parsing a file of a few hundred thousand requests takes well under a second. */
const LOAD_TIMEOUT_MS = 60_000;
/** Each call's deadline inside the child; a job ends at most this long after its duration. */
const CALL_DEADLINE_MS = 10_000;
/** Beyond a job's duration and call deadline: how long its answer may take to arrive. */
const ANSWER_SLACK_MS = 15_000;
/**
 * Requests encoded per load process per second of a timed job: above any rate one load process
 * reached here (etcd Put ~25k/s, Roster Register ~42k/s and unary Heartbeat ~58k/s), since
 * running out fails the job's last calls.
 */
const REQUESTS_PER_SECOND = 100_000;
/** Frames are written in chunks of this size rather than joined into one buffer. */
const WRITE_CHUNK = 1 << 20;

/** What a replay job drives: gRPC unary calls of `method`, or HTTP requests against a base URL. */
export type ReplayTarget = { readonly kind: 'grpc'; readonly target: string; readonly method: string } | { readonly kind: 'http'; readonly target: string };

/** One HTTP request as a frame carries it; `path` is appended to the target's base URL. */
export interface HttpFrame {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** What the child reports of a timed job; `cpuSeconds` is its own CPU during the job. */
export interface ReplayResult {
  readonly ok: number;
  readonly failed: number;
  readonly seconds: number;
  readonly cpuSeconds: number;
  /** ms, one per successful call. */
  readonly latencies: number[];
  readonly firstError?: string;
}

/**
 * A write → event job (see bench/replay/watch.go): the stream to watch, opened with `request`,
 * and how to find instance ids in its messages; writes are paced at `perSecond`, the k-th
 * loaded request registering instance id `w-<k>`.
 */
export interface WatchSpec {
  readonly target: string;
  readonly method: string;
  readonly request: Uint8Array;
  /** A bidirectional stream, kept open for writing (etcd ends a watch whose client half-closes). */
  readonly clientStreams: boolean;
  /** A message with this bool field set says the watch is established; 0: the first message. */
  readonly readyField: number;
  /** Field numbers from a stream message down to an instance id, through embedded messages. */
  readonly idPath: readonly number[];
  readonly perSecond: number;
}

/** What the child reports of a watch job: latencies are write sent → event received. */
export interface WatchReplayResult extends ReplayResult {
  readonly issued: number;
  readonly skipped: number;
  readonly events: number;
  readonly sustainedPerSecond: number;
}

/** Beyond a watch job's duration: setting up the watch, draining events, a call's deadline. */
const WATCH_SLACK_MS = 5_000 + 5_000 + CALL_DEADLINE_MS + ANSWER_SLACK_MS;

interface Answer extends Partial<Omit<WatchReplayResult, keyof ReplayResult>>, ReplayResult {
  readonly id: number;
  readonly loaded?: number;
  readonly error?: string;
}

/**
 * The path of an up-to-date replay binary: `go build` in bench/replay when the binary is missing
 * or older than a source file. Built under a temporary name and renamed, so that processes
 * building at once never run a half-written file.
 */
export function replayBinary(): string {
  const sources = readdirSync(SOURCE_DIR).filter((name) => name.endsWith('.go') || name === 'go.mod' || name === 'go.sum');
  const newest = Math.max(...sources.map((name) => statSync(join(SOURCE_DIR, name)).mtimeMs));
  if (existsSync(REPLAY_BINARY) && statSync(REPLAY_BINARY).mtimeMs >= newest) return REPLAY_BINARY;
  try {
    execFileSync('go', ['version'], { stdio: 'ignore', timeout: 30_000 });
  } catch {
    throw new Error('the load generator bench/replay is written in Go and `go` is not on PATH: install Go (the version in bench/replay/go.mod or newer, https://go.dev/dl/)');
  }
  mkdirSync(join(SOURCE_DIR, 'bin'), { recursive: true });
  const partial = `${REPLAY_BINARY}.${process.pid}.partial`;
  try {
    execFileSync('go', ['build', '-o', partial, '.'], { cwd: SOURCE_DIR, stdio: ['ignore', 'ignore', 'inherit'], timeout: BUILD_TIMEOUT_MS });
    renameSync(partial, REPLAY_BINARY);
  } finally {
    rmSync(partial, { force: true });
  }
  return REPLAY_BINARY;
}

/** How many requests to encode for a timed job of `durationMs`, at `perSecond` (default: above any rate a Roster or etcd row reached). */
export function requestsFor(durationMs: number, perSecond = REQUESTS_PER_SECOND): number {
  return Math.ceil((perSecond * durationMs) / 1000);
}

/** An HTTP request as a frame's bytes. */
export function httpFrame(request: HttpFrame): Buffer {
  return Buffer.from(JSON.stringify(request));
}

/** Requests the child has loaded for one timed job. */
export interface Loaded {
  readonly file: string;
  readonly target: ReplayTarget;
  readonly count: number;
}

/** One replay child and the jobs it answers, matched by id; every wait is bounded. */
export class Replay {
  readonly #child: ChildProcess;
  readonly #dir: string;
  readonly #pending = new Map<number, { resolve: (answer: Answer) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  #nextId = 1;
  #exited: string | undefined;
  readonly #killOnExit = (): void => {
    this.#child.kill('SIGKILL');
  };

  private constructor(binary: string) {
    this.#dir = mkdtempSync(join(tmpdir(), 'roster-replay-'));
    this.#child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.#child.stdin!.on('error', () => undefined); // a dead child is reported through 'exit'
    createInterface({ input: this.#child.stdout! }).on('line', (line) => this.#answer(JSON.parse(line) as Answer));
    this.#child.on('exit', (code, signal) => {
      this.#exited = `replay exited (${signal ?? code})`;
      for (const pending of this.#pending.values()) {
        clearTimeout(pending.timer);
        pending.reject(new Error(this.#exited));
      }
      this.#pending.clear();
    });
    process.on('exit', this.#killOnExit);
  }

  /** Starts a child of this process (building the binary first if needed). */
  static start(): Replay {
    return new Replay(replayBinary());
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /**
   * Writes `frames` to a temporary file, has the child read and parse it, and removes it: the
   * requests wait in the child for {@link run}.
   */
  async load(target: ReplayTarget, frames: Iterable<Uint8Array>): Promise<Loaded> {
    const file = join(this.#dir, `requests-${this.#nextId}`);
    try {
      writeFrames(file, frames);
      const answer = await this.#send({ load: true, kind: target.kind, target: target.target, file }, LOAD_TIMEOUT_MS);
      return { file, target, count: answer.loaded ?? 0 };
    } finally {
      rmSync(file, { force: true });
    }
  }

  /** Replays loaded requests, each once, with `concurrency` callers for `durationMs`. */
  async run(requests: Loaded, concurrency: number, durationMs: number): Promise<ReplayResult> {
    const answer = await this.#send({ ...requests.target, file: requests.file, concurrency, durationMs, deadlineMs: CALL_DEADLINE_MS }, durationMs + CALL_DEADLINE_MS + ANSWER_SLACK_MS);
    return replayResult(answer);
  }

  /** Writes loaded requests open loop, each timed to its event on the watch `spec` describes. */
  async watch(requests: Loaded, spec: WatchSpec, durationMs: number): Promise<WatchReplayResult> {
    const watch = { ...spec, request: Buffer.from(spec.request).toString('base64') };
    const answer = await this.#send({ ...requests.target, file: requests.file, durationMs, deadlineMs: CALL_DEADLINE_MS, watch }, durationMs + WATCH_SLACK_MS);
    return {
      ...replayResult(answer),
      issued: answer.issued ?? 0,
      skipped: answer.skipped ?? 0,
      events: answer.events ?? 0,
      sustainedPerSecond: answer.sustainedPerSecond ?? 0,
    };
  }

  close(): void {
    process.off('exit', this.#killOnExit);
    this.#child.stdin!.end();
    this.#child.kill('SIGKILL');
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #send(job: Record<string, unknown>, timeoutMs: number): Promise<Answer> {
    if (this.#exited !== undefined) return Promise.reject(new Error(this.#exited));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`replay: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#child.stdin!.write(`${JSON.stringify({ id, ...job })}\n`);
    });
  }

  #answer(answer: Answer): void {
    const pending = this.#pending.get(answer.id);
    if (pending === undefined) return;
    this.#pending.delete(answer.id);
    clearTimeout(pending.timer);
    if (answer.error !== undefined) pending.reject(new Error(`replay: ${answer.error}`));
    else pending.resolve(answer);
  }
}

/** What every job's answer reports. */
function replayResult(answer: Answer): ReplayResult {
  return {
    ok: answer.ok,
    failed: answer.failed,
    seconds: answer.seconds,
    cpuSeconds: answer.cpuSeconds,
    latencies: answer.latencies,
    ...(answer.firstError === undefined ? {} : { firstError: answer.firstError }),
  };
}

function writeFrames(file: string, frames: Iterable<Uint8Array>): void {
  const fd = openSync(file, 'w');
  try {
    const chunk = Buffer.allocUnsafe(WRITE_CHUNK);
    let used = 0;
    const flush = (): void => {
      writeSync(fd, chunk, 0, used);
      used = 0;
    };
    for (const frame of frames) {
      if (used + 4 + frame.length > WRITE_CHUNK) flush();
      if (4 + frame.length > WRITE_CHUNK) {
        const header = Buffer.alloc(4);
        header.writeUInt32BE(frame.length);
        writeSync(fd, header);
        writeSync(fd, frame);
        continue;
      }
      chunk.writeUInt32BE(frame.length, used);
      chunk.set(frame, used + 4);
      used += 4 + frame.length;
    }
    flush();
  } finally {
    closeSync(fd);
  }
}

/**
 * A load process's replay child and the one job prepared for it: the coordinator has a job
 * prepared (requests encoded, loaded by the child) before it starts timing, then runs that job.
 * Jobs are matched by a key (their JSON); running one that was not prepared is an error, since
 * preparing inside the window would count the encoding as load and as time.
 */
export class PreparedReplay {
  #replay: Replay | undefined;
  #prepared: { readonly key: string; readonly requests: Loaded } | undefined;

  /** `count` requests from `frame(k)`, k = 0 … count − 1. */
  async prepare(key: string, target: ReplayTarget, count: number, frame: (k: number) => Uint8Array): Promise<number> {
    this.#prepared = undefined;
    this.#replay ??= Replay.start();
    const requests = await this.#replay.load(target, framesOf(count, frame));
    if (requests.count !== count) throw new Error(`replay loaded ${requests.count} of ${count} requests`);
    this.#prepared = { key, requests };
    return count;
  }

  async run(key: string, concurrency: number, durationMs: number): Promise<ReplayResult> {
    const { replay, requests } = this.#take(key);
    return replay.run(requests, concurrency, durationMs);
  }

  async watch(key: string, spec: WatchSpec, durationMs: number): Promise<WatchReplayResult> {
    const { replay, requests } = this.#take(key);
    return replay.watch(requests, spec, durationMs);
  }

  #take(key: string): { replay: Replay; requests: Loaded } {
    const prepared = this.#prepared;
    this.#prepared = undefined;
    if (prepared === undefined || prepared.key !== key || this.#replay === undefined) throw new Error('a replayed job must be prepared first, with the same job');
    return { replay: this.#replay, requests: prepared.requests };
  }

  close(): void {
    this.#replay?.close();
  }
}

function* framesOf(count: number, frame: (k: number) => Uint8Array): Generator<Uint8Array> {
  for (let k = 0; k < count; k++) yield frame(k);
}
