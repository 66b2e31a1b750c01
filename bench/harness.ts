import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerMessage, ServerRequest } from './server.js';

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

const SERVER_SCRIPT = fileURLToPath(new URL('./server.ts', import.meta.url));
/** USER_HZ: the unit of /proc CPU times, 100 on every Linux platform Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;
const SERVER_START_TIMEOUT_MS = 30_000;
const SERVER_REQUEST_TIMEOUT_MS = 120_000;

/** What a load loop achieved. */
export interface LoadResult {
  readonly ok: number;
  readonly failed: number;
  readonly seconds: number;
  /** Successful operations per second. */
  readonly perSecond: number;
  /** The first failure, to tell why when `failed` is not 0. */
  readonly firstError?: string;
}

/**
 * Keeps `concurrency` operations in flight for `durationMs`: each one that settles starts the
 * next, until the time is up; then waits for the stragglers. `operation` resolves true on
 * success, false (or throws) on failure; `i` counts operations from 0.
 */
export async function runInFlight(options: { readonly concurrency: number; readonly durationMs: number; readonly operation: (i: number) => Promise<boolean> }): Promise<LoadResult> {
  const { concurrency, durationMs, operation } = options;
  let next = 0;
  let ok = 0;
  let failed = 0;
  let firstError: string | undefined;
  const start = performance.now();
  const stopAt = start + durationMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < stopAt) {
      let succeeded = false;
      try {
        succeeded = await operation(next++);
      } catch (err) {
        firstError ??= err instanceof Error ? err.message : String(err);
      }
      if (succeeded) ok++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - start) / 1000;
  return { ok, failed, seconds, perSecond: ok / seconds, ...(firstError === undefined ? {} : { firstError }) };
}

/** Runs `operation` `times` times one after the other and returns each duration in ms. */
export async function timeEach(times: number, operation: () => Promise<void>): Promise<number[]> {
  const durations: number[] = [];
  for (let i = 0; i < times; i++) {
    const start = performance.now();
    await operation();
    durations.push(performance.now() - start);
  }
  return durations;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * A Roster node in a child process (bench/server.ts), reached on 127.0.0.1:`port`.
 * `flags` are `roster serve` settings by camelCase name, e.g. `{writesPerSecond: 1e6}`.
 */
export class ServerProcess {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, (message: ServerMessage) => void>();
  #nextId = 1;

  private constructor(
    child: ChildProcess,
    readonly port: number,
    /** The node's HTTP port (metrics, dashboard). */
    readonly httpPort: number,
  ) {
    this.#child = child;
    child.on('message', (message: ServerMessage) => {
      if ('id' in message) {
        this.#pending.get(message.id)?.(message);
        this.#pending.delete(message.id);
      }
    });
  }

  static async start(flags: Readonly<Record<string, unknown>> = {}): Promise<ServerProcess> {
    const child = fork(SERVER_SCRIPT, [JSON.stringify(flags)], {
      execArgv: ['--import', 'tsx', '--expose-gc', ...serverNodeArgs()],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const ports = await new Promise<{ port: number; httpPort: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('bench server did not start in time')), SERVER_START_TIMEOUT_MS);
      child.once('exit', (code) => reject(new Error(`bench server exited with code ${code} before serving`)));
      child.on('message', (message: ServerMessage) => {
        if ('type' in message && message.type === 'ready') {
          clearTimeout(timer);
          resolve({ port: message.port, httpPort: message.httpPort });
        }
      });
    });
    child.removeAllListeners('exit');
    return new ServerProcess(child, ports.port, ports.httpPort);
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /**
   * Registers the generated instances `from` ≤ i < `to` inside the server (a fast set-up for
   * read benchmarks) and returns the registry's size.
   */
  async populate(from: number, to: number, prefix = 'bench'): Promise<number> {
    const answer = await this.#request({ type: 'populate', from, to, prefix });
    return answer.size;
  }

  /** The number of instances the server holds. */
  async size(): Promise<number> {
    return (await this.#request({ type: 'stats' })).size;
  }

  /**
   * The server's resident set after a full GC and its peak (VmHWM) so far, in bytes, from
   * /proc; with Node's own breakdown (JS heap used and reserved, Buffers outside the heap).
   */
  async memory(): Promise<{ rss: number; peakRss: number; node: NodeJS.MemoryUsage }> {
    const { memory } = await this.#request({ type: 'gc' });
    const status = readFileSync(`/proc/${this.#child.pid}/status`, 'utf8');
    return { rss: procKiB(status, 'VmRSS') * 1024, peakRss: procKiB(status, 'VmHWM') * 1024, node: memory };
  }

  /** CPU time (user + system) the server process has used so far, in seconds. */
  cpuSeconds(): number {
    // Fields 14 and 15 of /proc/<pid>/stat, counted after the parenthesised command name.
    const stat = readFileSync(`/proc/${this.#child.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.disconnect();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  #request(request: WithoutId<ServerRequest>): Promise<Extract<ServerMessage, { ok: true }>> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bench server: no answer to ${request.type}`)), SERVER_REQUEST_TIMEOUT_MS);
      this.#pending.set(id, (message) => {
        clearTimeout(timer);
        if ('ok' in message && message.ok) resolve(message);
        else reject(new Error(`bench server: ${'error' in message ? message.error : 'bad answer'}`));
      });
      this.#child.send({ ...request, id });
    });
  }
}

/**
 * Extra Node flags for server processes from ROSTER_BENCH_NODE_ARGS (space-separated), e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the server while a scenario runs (Node
 * refuses --cpu-prof in NODE_OPTIONS, and the load generator must not be profiled with it).
 */
function serverNodeArgs(): string[] {
  return (process.env.ROSTER_BENCH_NODE_ARGS ?? '').split(' ').filter((arg) => arg.length > 0);
}

function procKiB(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (match === null) throw new Error(`no ${field} in /proc status`);
  return Number(match[1]);
}

export interface MachineDescription {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly node: string;
  readonly loadAverageBefore: number[];
  readonly loadAverageAfter: number[];
}

/** The machine a benchmark ran on, for its JSON: load averages before and after say how quiet it was. */
export function describeMachine(loadAverageBefore: readonly number[]): MachineDescription {
  const round2 = (n: number): number => Math.round(n * 100) / 100;
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadAverageBefore: loadAverageBefore.map(round2),
    loadAverageAfter: loadavg().map(round2),
  };
}

/** Writes a benchmark's report as JSON to `path`, and to `out` when given (their folders made as needed), saying so on stdout. */
export function writeReport(report: unknown, path: string, out: string | undefined): void {
  for (const file of [path, ...(out === undefined ? [] : [out])]) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`wrote ${file}`);
  }
}
