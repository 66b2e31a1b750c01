/**
 * The processes of `npm run bench -- --compare eureka`: the Eureka server (a Spring Boot jar
 * built from bench/eureka-server with Maven), Roster nodes (`node bin/roster.js serve`, as
 * users run it) and the forked load generators; with /proc readings of their CPU and memory.
 * Every process started here is recorded and killed when the benchmark ends, however it ends.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Job, JobResult, LoadReply } from './compare-eureka-load.js';
import { http } from './compare-eureka-load.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const EUREKA_PROJECT = join(REPO, 'bench', 'eureka-server');
export const EUREKA_JAR = join(EUREKA_PROJECT, 'target', 'roster-bench-eureka-server.jar');
const LOAD_SCRIPT = fileURLToPath(new URL('./compare-eureka-load.ts', import.meta.url));
/** USER_HZ, the unit of /proc CPU times (100 on every Linux platform Node runs on). */
const CLOCK_TICKS_PER_SECOND = 100;
/** Three JVMs starting at once on a busy 2-core machine took over 2 minutes. */
const START_TIMEOUT_MS = 300_000;
const STOP_TIMEOUT_MS = 10_000;
const MAVEN_TIMEOUT_MS = 15 * 60_000;

const started = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** Where this run's server logs go (kept after the run, to read when something failed). */
export const LOG_DIR = mkdtempSync(join(tmpdir(), 'roster-compare-eureka-'));

/** CPU time (user + system) a process has used so far, in seconds, from /proc/PID/stat. */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** A process's resident set (VmRSS) in bytes. */
export function rssOf(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (match === null) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}

/**
 * Builds the Eureka server jar with `mvn -B -q package` unless it is newer than every source
 * file of its project (pom.xml, src/). Dependencies come from ~/.m2 (downloaded once).
 */
export function ensureEurekaJar(log: (line: string) => void): void {
  const sources = [join(EUREKA_PROJECT, 'pom.xml'), ...listFiles(join(EUREKA_PROJECT, 'src'))];
  const newestSource = Math.max(...sources.map((f) => statSync(f).mtimeMs));
  if (existsSync(EUREKA_JAR) && statSync(EUREKA_JAR).mtimeMs > newestSource) {
    log(`Eureka server jar is up to date (${EUREKA_JAR})`);
    return;
  }
  try {
    execFileSync('mvn', ['-v'], { stdio: 'ignore', timeout: 60_000 });
  } catch {
    throw new Error('Maven (mvn) and a JDK 17 are needed to build the Eureka server: apt-get install -y maven openjdk-17-jdk-headless');
  }
  log('building the Eureka server (mvn -B -q package in bench/eureka-server; the first build downloads Spring Cloud into ~/.m2) ...');
  const began = Date.now();
  execFileSync('mvn', ['-B', '-q', '-Dstyle.color=never', 'package'], { cwd: EUREKA_PROJECT, stdio: ['ignore', 'inherit', 'inherit'], timeout: MAVEN_TIMEOUT_MS });
  log(`built in ${Math.round((Date.now() - began) / 1000)} s`);
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? listFiles(join(dir, entry.name)) : [join(dir, entry.name)]));
}

/** A server process this benchmark started: Eureka (a JVM) or a Roster node. */
export class ServerChild {
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    /** Eureka REST base URL, e.g. http://127.0.0.1:8761/eureka */
    readonly base: string,
    /** Roster's gRPC address (host:port); undefined for Eureka. */
    readonly grpcAddress: string | undefined,
    /** Spawn to first answer of GET apps, ms. */
    readonly startupMs: number,
    readonly logFile: string,
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  cpuSeconds(): number {
    return cpuSecondsOf(this.pid);
  }

  rssBytes(): number {
    return rssOf(this.pid);
  }

  /** SIGTERM, then SIGKILL if it has not exited in time. */
  async stop(): Promise<void> {
    await stopChild(this.child);
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    started.delete(child);
    return;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
  started.delete(child);
}

/** Spawns `command` with its output in a log file, and waits until `GET base/apps` answers 200. */
async function spawnServer(name: string, command: string, args: string[], base: string, grpcAddress: string | undefined, env: NodeJS.ProcessEnv): Promise<ServerChild> {
  const logFile = join(LOG_DIR, `${name}.log`);
  const fd = openSync(logFile, 'w');
  const began = performance.now();
  const child = spawn(command, args, { cwd: REPO, env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  started.add(child);
  const deadline = began + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode} before serving; see ${logFile}`);
    try {
      const answer = await http(undefined, 'GET', `${base}/apps`, undefined, { accept: 'application/json' });
      if (answer.status === 200) break;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) {
      await stopChild(child);
      throw new Error(`${name} did not answer GET ${base}/apps within ${START_TIMEOUT_MS / 1000} s; see ${logFile}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return new ServerChild(name, child, base, grpcAddress, performance.now() - began, logFile);
}

/**
 * A Eureka server with JVM defaults on `port`; with `peers` (their ports, this one included)
 * it replicates to the others, as a `defaultZone` list makes a Spring Cloud Eureka cluster.
 */
export function startEureka(name: string, port: number, peers: readonly number[] = []): Promise<ServerChild> {
  const url = (p: number): string => `http://127.0.0.1:${p}/eureka/`;
  const args = ['-jar', EUREKA_JAR, `--server.port=${port}`];
  if (peers.length > 0) args.push(`--eureka.client.serviceUrl.defaultZone=${peers.map(url).join(',')}`);
  return spawnServer(name, 'java', args, `http://127.0.0.1:${port}/eureka`, undefined, cleanEnv());
}

/** The write rate limit is lifted: the benchmark measures the write path, not a per-deployment limit. */
export const ROSTER_LIFTED_LIMITS = ['--writes-per-second', '10000000', '--write-burst', '10000000'];

/** A Roster node as users run it: `node bin/roster.js serve`, on the given ports. */
export function startRoster(name: string, grpcPort: number, httpPort: number, peers: readonly number[] = [], token = ''): Promise<ServerChild> {
  const args = ['bin/roster.js', 'serve', '--node-id', name, '--port', String(grpcPort), '--http-port', String(httpPort), '--log-format', 'json', ...ROSTER_LIFTED_LIMITS];
  if (peers.length > 0) args.push('--peers', peers.map((p) => `127.0.0.1:${p}`).join(','));
  const env = { ...cleanEnv(), ...(token === '' ? {} : { ROSTER_CLUSTER_TOKEN: token }) };
  return spawnServer(name, process.execPath, args, `http://127.0.0.1:${httpPort}/eureka`, `127.0.0.1:${grpcPort}`, env);
}

/** The environment without ROSTER_* settings (a stray one must not skew a benchmark). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('ROSTER_')));
}

/** A job's results from every load process, added up. */
export interface PooledResult {
  readonly ok: number;
  readonly failed: number;
  readonly seconds: number;
  readonly perSecond: number;
  /** Load generators' CPU time during the job, seconds (all processes). */
  readonly clientCpuSeconds: number;
  readonly latencies: number[];
  readonly firstError?: string;
  readonly results: readonly JobResult[];
}

/** Longer than any job runs (the longest are fills of 100k records and rounds of a few seconds). */
const JOB_TIMEOUT_MS = 600_000;

/** One or more forked load-generator processes (bench/compare-eureka-load.ts). */
export class LoadPool {
  readonly #workers: ChildProcess[];
  readonly #pending = new Map<number, (reply: LoadReply) => void>();
  #nextId = 1;

  private constructor(workers: ChildProcess[]) {
    this.#workers = workers;
    for (const worker of workers) {
      worker.on('message', (reply: LoadReply) => {
        this.#pending.get(reply.id)?.(reply);
        this.#pending.delete(reply.id);
      });
    }
  }

  static start(processes: number): LoadPool {
    const workers = Array.from({ length: processes }, () => {
      const child = fork(LOAD_SCRIPT, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      started.add(child);
      return child;
    });
    return new LoadPool(workers);
  }

  get size(): number {
    return this.#workers.length;
  }

  /** Runs `jobOf(w, n)` on each of the first `n` workers at once and adds the results up. */
  async run(jobOf: (worker: number, workers: number) => Job, n = this.#workers.length): Promise<PooledResult> {
    const results = await Promise.all(this.#workers.slice(0, n).map((worker, w) => this.#send(worker, jobOf(w, n))));
    const ok = results.reduce((s, r) => s + r.ok, 0);
    const seconds = Math.max(...results.map((r) => r.seconds));
    const firstError = results.find((r) => r.firstError !== undefined)?.firstError;
    return {
      ok,
      failed: results.reduce((s, r) => s + r.failed, 0),
      seconds,
      perSecond: ok / seconds,
      clientCpuSeconds: results.reduce((s, r) => s + r.cpuSeconds, 0),
      latencies: results.flatMap((r) => r.latencies),
      ...(firstError === undefined ? {} : { firstError }),
      results,
    };
  }

  /** Has each of the first `n` workers prepare its replay job `jobOf(w, n)` (untimed); other jobs need none. */
  async prepare(jobOf: (worker: number, workers: number) => Job, n = this.#workers.length): Promise<void> {
    await Promise.all(
      this.#workers.slice(0, n).map((worker, w) => {
        const job = jobOf(w, n);
        return job.kind === 'replay' ? this.#send(worker, { kind: 'prepare', job }) : undefined;
      }),
    );
  }

  /** Sends one job; fails when the worker exits first or no answer comes within {@link JOB_TIMEOUT_MS}. */
  #send(worker: ChildProcess, job: Job): Promise<JobResult> {
    const id = this.#nextId++;
    return new Promise<JobResult>((resolve, reject) => {
      const settle = (): void => {
        clearTimeout(timer);
        worker.off('exit', onExit);
        this.#pending.delete(id);
      };
      const onExit = (code: number | null, signal: string | null): void => {
        settle();
        reject(new Error(`load generator exited (${signal ?? code}) during a ${job.kind} job`));
      };
      const timer = setTimeout(() => {
        settle();
        reject(new Error(`load generator: no answer to a ${job.kind} job within ${JOB_TIMEOUT_MS / 1000} s`));
      }, JOB_TIMEOUT_MS);
      worker.once('exit', onExit);
      this.#pending.set(id, (reply) => {
        settle();
        if (reply.ok) resolve(reply.result);
        else reject(new Error(`load generator: ${reply.error}`));
      });
      worker.send({ id, job });
    });
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.#workers.map(async (worker) => {
        if (worker.exitCode === null) {
          const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
          worker.disconnect();
          const timer = setTimeout(() => worker.kill('SIGKILL'), STOP_TIMEOUT_MS);
          await exited;
          clearTimeout(timer);
        }
        started.delete(worker);
      }),
    );
  }
}
