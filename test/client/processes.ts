import { spawn, type ChildProcess } from 'node:child_process';
import { waitFor } from './harness.js';
import { freePort } from '../support/ports.js';

/** Runs `roster` (the TypeScript CLI through tsx) with `args`; stdout and stderr are collected. */
export function spawnRoster(args: readonly string[], env: NodeJS.ProcessEnv = {}): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return Object.assign(child, { output: () => output });
}

/** Signals `child` and resolves with its exit code (null when a signal ended it). */
export async function stopProcess(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill(signal);
  return exited;
}

/** One `roster serve` process on fixed loopback ports, restartable on the same ports. */
export class ServeProcess {
  child: (ChildProcess & { output: () => string }) | undefined;

  private constructor(
    readonly name: string,
    readonly port: number,
    readonly httpPort: number,
    readonly extraArgs: readonly string[],
  ) {}

  /** A process on fresh free ports (not started). */
  static async create(name: string, extraArgs: readonly string[] = []): Promise<ServeProcess> {
    return new ServeProcess(name, await freePort(), await freePort(), extraArgs);
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  start(peers: readonly string[] = []): void {
    this.child = spawnRoster(
      // biome-ignore format: a flag and its value per line
      [
        'serve',
        '--port', String(this.port),
        '--http-port', String(this.httpPort),
        '--node-id', this.name,
        '--peers', peers.join(','),
        '--log-level', 'warn',
        '--startup-wait-secs', '10', ...this.extraArgs,
      ],
      { ROSTER_CLUSTER_TOKEN: 'client-test-token' },
    );
  }

  /** Waits until /readyz answers 200. */
  async ready(): Promise<void> {
    await waitFor(
      `${this.name} ready`,
      async () => {
        if (this.child?.exitCode !== null) throw new Error(`${this.name} exited: ${this.child?.output()}`);
        try {
          return (await fetch(`http://127.0.0.1:${this.httpPort}/readyz`)).ok;
        } catch {
          return false;
        }
      },
      60_000,
    );
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    return stopProcess(this.child, signal);
  }
}
