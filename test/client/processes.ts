import { spawn, type ChildProcess } from 'node:child_process';
import { stopProcess, untilReady } from '../support/nodes.js';
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

  /** Waits until /readyz answers 200; fails at once if the process exited. */
  ready(): Promise<void> {
    return untilReady(this.name, this.httpPort, 60_000, () => (this.child?.exitCode !== null ? (this.child?.output() ?? 'not started') : undefined));
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    return stopProcess(this.child, signal);
  }
}
