/**
 * The servers of the Roster-vs-etcd comparison, each in its own process on free loopback
 * ports: Roster as users run it (`node bin/roster.js serve`) and etcd from Debian's
 * `etcd-server` with its data directory on /dev/shm. Single nodes and three-node clusters.
 *
 * Every process started here is tracked until it is stopped, so {@link killAllSync} can end
 * them (and remove etcd's data directories) from an exit or signal handler.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cpuSecondsFromStat, statusBytes, waitSecondsFromSchedstat } from './stats.js';
import { freePorts } from '../../test/support/ports.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const ETCD_BIN = '/usr/bin/etcd';
/** etcd's data lives in memory, so neither side waits on a disk (Roster keeps none). */
const DATA_PARENT = '/dev/shm';
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const POLL_MS = 100;
/** Kept from a server's stderr, to say why it failed to start. */
const STDERR_TAIL_BYTES = 4_096;

/**
 * The write rate limit is lifted: its default (50k writes/s, burst 20k) is a per-deployment
 * setting, and the comparison measures the write path, not the limiter. etcd has no such limit.
 */
export const ROSTER_UNLIMITED_WRITES = ['--writes-per-second', '10000000', '--write-burst', '10000000'] as const;
/** Shared by the three Roster nodes of the cluster rows (a flag is fine on loopback). */
const CLUSTER_TOKEN = 'compare-etcd-bench';

const live = new Set<ServerProcess>();

/** One server process under test. */
export class ServerProcess {
  readonly #child: ChildProcess;
  readonly #dataDir: string | undefined;
  #stderrTail = '';

  constructor(
    /** e.g. "roster", "etcd-1". */
    readonly name: string,
    child: ChildProcess,
    /** gRPC address, host:port. */
    readonly address: string,
    dataDir?: string,
  ) {
    this.#child = child;
    this.#dataDir = dataDir;
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderrTail = (this.#stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES);
    });
    live.add(this);
  }

  get pid(): number {
    if (this.#child.pid === undefined) throw new Error(`${this.name} has no pid`);
    return this.#child.pid;
  }

  get exited(): boolean {
    return this.#child.exitCode !== null || this.#child.signalCode !== null;
  }

  get stderrTail(): string {
    return this.#stderrTail;
  }

  /** CPU time (user + system) used so far, in seconds, from /proc/<pid>/stat. */
  cpuSeconds(): number {
    return cpuSecondsFromStat(readFileSync(`/proc/${this.pid}/stat`, 'utf8'));
  }

  /**
   * Seconds its threads have waited for a CPU while runnable, summed over the threads alive now
   * (from their schedstat; a thread that ended takes its share with it); NaN where the kernel
   * keeps no schedstat. A single-threaded server that shares the machine's cores loses this
   * much time to other threads.
   */
  waitSeconds(): number {
    try {
      let sum = 0;
      for (const tid of readdirSync(`/proc/${this.pid}/task`)) {
        try {
          sum += waitSecondsFromSchedstat(readFileSync(`/proc/${this.pid}/task/${tid}/schedstat`, 'utf8'));
        } catch {
          // The thread ended between the listing and the read.
        }
      }
      return sum;
    } catch {
      return Number.NaN;
    }
  }

  /** Resident set now and its peak so far (VmRSS, VmHWM), in bytes. */
  memory(): { rss: number; peakRss: number } {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    return { rss: statusBytes(status, 'VmRSS'), peakRss: statusBytes(status, 'VmHWM') };
  }

  /** SIGTERM, then SIGKILL after {@link STOP_TIMEOUT_MS}; removes the data directory. */
  async stop(): Promise<void> {
    if (!this.exited) {
      const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    this.#removeData();
    live.delete(this);
  }

  /** For exit and signal handlers: no waiting. */
  killSync(): void {
    if (!this.exited) this.#child.kill('SIGKILL');
    this.#removeData();
    live.delete(this);
  }

  #removeData(): void {
    if (this.#dataDir !== undefined) rmSync(this.#dataDir, { recursive: true, force: true });
  }
}

/** Ends every server process still running and removes etcd's data directories. */
export function killAllSync(): void {
  for (const server of [...live]) server.killSync();
}

/**
 * Runs `body`; a SIGINT or SIGTERM meanwhile ends `others` (load processes, a replay child) and
 * every server started here, and exits 130. The handlers are removed when `body` ends.
 */
export async function stoppedOnSignal<T>(others: () => void, body: () => Promise<T>): Promise<T> {
  const onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\n${signal}: stopping every server and load process\n`);
    others();
    killAllSync();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await body();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** A group of servers measured together: their CPU and RSS add up. */
export class ServerGroup {
  constructor(readonly servers: readonly ServerProcess[]) {}

  get first(): ServerProcess {
    return this.servers[0]!;
  }

  cpuSeconds(): number {
    return this.servers.reduce((sum, s) => sum + s.cpuSeconds(), 0);
  }

  waitSeconds(): number {
    return this.servers.reduce((sum, s) => sum + s.waitSeconds(), 0);
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
  }
}

/** The version of Debian's etcd (`etcd --version`), or undefined when it is not installed. */
export function etcdVersion(bin = ETCD_BIN): string | undefined {
  const result = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (result.error !== undefined || result.status !== 0) return undefined;
  return /etcd Version: (\S+)/.exec(result.stdout)?.[1];
}

/**
 * What `bin/roster.js` will run, by the same rule it applies: `dist/` when its build stamp is
 * newer than every file under `src/` (what `npm ci` leaves, through `prepare`), else `src/`
 * through tsx (an empty node then needs about 40 MiB more). Reported with the results.
 */
export function rosterRunsFrom(root = ROOT): 'dist' | 'src (tsx)' {
  let built = 0;
  try {
    built = statSync(`${root}dist/.build-stamp`).mtimeMs;
  } catch {
    return 'src (tsx)';
  }
  for (const entry of readdirSync(`${root}src`, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && statSync(`${entry.parentPath}/${entry.name}`).mtimeMs > built) return 'src (tsx)';
  }
  return 'dist';
}

/**
 * One Roster node: `node bin/roster.js serve` with silent logs and the write limit lifted; from
 * this checkout, or from the one at `root` (a directory ending in `/`: bench/ab.ts).
 */
export async function startRoster(options: { name?: string; extraArgs?: readonly string[]; nodeArgs?: readonly string[]; root?: string } = {}): Promise<ServerProcess> {
  const [port, httpPort] = (await freePorts(2)) as [number, number];
  return spawnRoster(options.name ?? 'roster', port, httpPort, options.extraArgs ?? [], options.nodeArgs ?? [], true, options.root);
}

/**
 * Three Roster nodes, each with the other two as static peers and a shared cluster token;
 * answers once every node's /readyz says it has synced.
 */
export async function startRosterCluster(nodeArgs: readonly string[] = []): Promise<ServerGroup> {
  const ports = await freePorts(6);
  const grpcPorts = [ports[0]!, ports[1]!, ports[2]!];
  const peers = grpcPorts.map((p) => `127.0.0.1:${p}`).join(',');
  const started: ServerProcess[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      started.push(await spawnRoster(`roster-${'abc'[i]}`, grpcPorts[i]!, ports[3 + i]!, ['--peers', peers, '--cluster-token', CLUSTER_TOKEN, '--node-id', `node-${'abc'[i]}`], nodeArgs, false));
    }
    await Promise.all(started.map((s, i) => waitForHttp(s, `http://127.0.0.1:${ports[3 + i]}/readyz`, () => true)));
    return new ServerGroup(started);
  } catch (err) {
    await Promise.all(started.map((s) => s.stop()));
    throw err;
  }
}

async function spawnRoster(name: string, port: number, httpPort: number, extraArgs: readonly string[], nodeArgs: readonly string[], waitReady = true, root = ROOT): Promise<ServerProcess> {
  const rosterBin = `${root}bin/roster.js`;
  const args = [...nodeArgs, rosterBin, 'serve', '--host', '127.0.0.1', '--port', String(port), '--http-port', String(httpPort), '--log-level', 'silent', ...ROSTER_UNLIMITED_WRITES, ...extraArgs];
  // The environment is left out on purpose: a stray ROSTER_* variable must not skew the run.
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env['PATH'] ?? '' } });
  const server = new ServerProcess(name, child, `127.0.0.1:${port}`);
  if (waitReady) {
    try {
      await waitForHttp(server, `http://127.0.0.1:${httpPort}/readyz`, () => true);
    } catch (err) {
      server.killSync();
      throw err;
    }
  }
  return server;
}

/** One etcd member, single-node cluster, data in a fresh directory under /dev/shm. */
export async function startEtcd(): Promise<ServerProcess> {
  return (await startEtcdMembers(1)).first;
}

/** A three-member etcd cluster (one raft group); answers once every member reports healthy. */
export async function startEtcdCluster(): Promise<ServerGroup> {
  return startEtcdMembers(3);
}

async function startEtcdMembers(count: number): Promise<ServerGroup> {
  const ports = await freePorts(2 * count);
  const names = Array.from({ length: count }, (_, i) => `etcd-${i}`);
  const peerUrl = (i: number): string => `http://127.0.0.1:${ports[count + i]}`;
  const initialCluster = names.map((n, i) => `${n}=${peerUrl(i)}`).join(',');
  const started: ServerProcess[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const dataDir = mkdtempSync(`${DATA_PARENT}/roster-bench-etcd-`);
      const clientUrl = `http://127.0.0.1:${ports[i]}`;
      // biome-ignore format: a flag and its value per line
      const args = [
        '--name', names[i]!,
        '--data-dir', dataDir,
        '--listen-client-urls', clientUrl,
        '--advertise-client-urls', clientUrl,
        '--listen-peer-urls', peerUrl(i),
        '--initial-advertise-peer-urls', peerUrl(i),
        '--initial-cluster', initialCluster,
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', `roster-bench-${process.pid}`,
        '--logger', 'zap',
        '--log-level', 'error',
      ];
      const child = spawn(ETCD_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env['PATH'] ?? '' } });
      started.push(new ServerProcess(count === 1 ? 'etcd' : names[i]!, child, `127.0.0.1:${ports[i]}`, dataDir));
    }
    await Promise.all(started.map((s, i) => waitForHttp(s, `http://127.0.0.1:${ports[i]}/health`, (body) => /"health":\s*"true"/.test(body))));
    return new ServerGroup(started);
  } catch (err) {
    for (const s of started) s.killSync();
    throw err;
  }
}

/** Polls `url` until it answers 200 with a body `accept` likes; bounded by {@link START_TIMEOUT_MS}. */
async function waitForHttp(server: ServerProcess, url: string, accept: (body: string) => boolean): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (server.exited) throw new Error(`${server.name} exited while starting: ${server.stderrTail.trim() || '(no stderr)'}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      const body = await response.text();
      if (response.status === 200 && accept(body)) return;
      last = `${response.status} ${body.slice(0, 200)}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new Error(`${server.name} not ready within ${START_TIMEOUT_MS} ms (${url}: ${last}); stderr: ${server.stderrTail.trim()}`);
}
