/**
 * The comparison's load processes: `size` forked bench/compare/load-worker.ts processes, each
 * with its own grpc-js channels, so that one Node event loop is not mistaken for a server
 * limit. Jobs go out over IPC; each process's CPU is read from /proc like the servers'.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Job, JobResult, WorkerMessage } from './jobs.js';
import { cpuSecondsFromStat } from './stats.js';

const WORKER_SCRIPT = fileURLToPath(new URL('./load-worker.ts', import.meta.url));
const START_TIMEOUT_MS = 30_000;
/** A job's own deadlines are far shorter; this only catches a wedged process. */
const JOB_TIMEOUT_MS = 300_000;

class LoadProcess {
  readonly #pending = new Map<number, { resolve: (result: JobResult) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  #nextId = 1;

  constructor(readonly child: ChildProcess) {
    child.on('message', (message: WorkerMessage) => {
      if (!('id' in message)) return;
      const pending = this.#pending.get(message.id);
      if (pending === undefined) return;
      this.#pending.delete(message.id);
      clearTimeout(pending.timer);
      if (message.ok) pending.resolve(message.result);
      else pending.reject(new Error(`load process: ${message.error}`));
    });
    child.on('exit', (code, signal) => {
      for (const pending of this.#pending.values()) {
        clearTimeout(pending.timer);
        pending.reject(new Error(`load process exited (${signal ?? code}) during a job`));
      }
      this.#pending.clear();
    });
  }

  run(job: Job): Promise<JobResult> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`load process: no answer to ${job.type} within ${JOB_TIMEOUT_MS} ms`));
      }, JOB_TIMEOUT_MS);
      this.#pending.set(id, { resolve, reject, timer });
      this.child.send({ id, job });
    });
  }

  cpuSeconds(): number {
    return cpuSecondsFromStat(readFileSync(`/proc/${this.child.pid}/stat`, 'utf8'));
  }
}

export class LoadPool {
  readonly #processes: readonly LoadProcess[];

  private constructor(processes: readonly LoadProcess[]) {
    this.#processes = processes;
  }

  static async start(size: number): Promise<LoadPool> {
    const processes: LoadProcess[] = [];
    try {
      for (let i = 0; i < size; i++) {
        const child = fork(WORKER_SCRIPT, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        processes.push(new LoadProcess(child));
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('load process did not start in time')), START_TIMEOUT_MS);
          child.once('exit', (code) => reject(new Error(`load process exited with ${code} while starting`)));
          child.on('message', (message: WorkerMessage) => {
            if ('type' in message && message.type === 'ready') {
              clearTimeout(timer);
              child.removeAllListeners('exit');
              resolve();
            }
          });
        });
      }
    } catch (err) {
      for (const p of processes) p.child.kill('SIGKILL');
      throw err;
    }
    return new LoadPool(processes);
  }

  get size(): number {
    return this.#processes.length;
  }

  /** Runs `makeJob(i)` on the first `count` processes at once; answers in process order. */
  runOn(count: number, makeJob: (index: number) => Job): Promise<JobResult[]> {
    if (count > this.#processes.length) throw new Error(`asked for ${count} load processes, the pool has ${this.#processes.length}`);
    return Promise.all(this.#processes.slice(0, count).map((p, i) => p.run(makeJob(i))));
  }

  /** CPU seconds used so far by the first `count` processes together. */
  cpuSeconds(count = this.#processes.length): number {
    return this.#processes.slice(0, count).reduce((sum, p) => sum + p.cpuSeconds(), 0);
  }

  stop(): void {
    for (const p of this.#processes) {
      if (p.child.connected) p.child.disconnect();
    }
  }

  killSync(): void {
    for (const p of this.#processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  }
}
