import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../client/harness.js';
import { stopProcess, untilReady } from '../support/nodes.js';
import { freePort } from '../support/ports.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const CLUSTER_TOKEN = 'xds-test-cluster-token';

/** A `roster serve` process on fixed loopback ports. */
export class RosterProcess {
  child: ChildProcess | undefined;
  constructor(
    readonly name: string,
    readonly port: number,
    readonly httpPort: number,
    readonly peers: readonly string[],
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  start(): void {
    this.child = spawn(
      process.execPath,
      // biome-ignore format: a flag and its value per line
      [
        'bin/roster.js', 'serve',
        '--port', String(this.port),
        '--http-port', String(this.httpPort),
        '--node-id', this.name,
        '--peers', this.peers.join(','),
        '--log-level', 'warn',
        '--startup-wait-secs', '10',
      ],
      { cwd: REPO, env: { ...process.env, ROSTER_CLUSTER_TOKEN: CLUSTER_TOKEN }, stdio: ['ignore', 'ignore', 'inherit'] },
    );
  }

  ready(): Promise<void> {
    return untilReady(this.name, this.httpPort, 30_000);
  }

  async metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.httpPort}/metrics`)).text();
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await stopProcess(this.child, signal);
  }
}

/** Starts `names.length` peered nodes and waits until each is ready. */
export async function startCluster(names: readonly string[]): Promise<RosterProcess[]> {
  const ports = await Promise.all(names.map(async () => ({ grpc: await freePort(), http: await freePort() })));
  const nodes = names.map(
    (name, i) =>
      new RosterProcess(
        name,
        ports[i]!.grpc,
        ports[i]!.http,
        ports.filter((_, j) => j !== i).map((p) => `127.0.0.1:${p.grpc}`),
      ),
  );
  for (const n of nodes) n.start();
  await Promise.all(nodes.map((n) => n.ready()));
  return nodes;
}

/** One call of the xDS client process: who answered, or the error. */
export interface Call {
  readonly at: number;
  readonly server?: string;
  readonly error?: string;
}

/** test/xds/xds-client.ts in its own process: a grpc-js-xds client calling `target` in a loop. */
export class XdsClientProcess {
  readonly calls: Call[] = [];
  readonly #child: ChildProcess;

  constructor(target: string, bootstrap: unknown) {
    this.#child = spawn(process.execPath, ['--import', 'tsx', 'test/xds/xds-client.ts', target], {
      cwd: REPO,
      env: { ...process.env, GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(bootstrap) },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    createInterface({ input: this.#child.stdout! }).on('line', (line) => this.calls.push(JSON.parse(line) as Call));
  }

  /** Calls answered after `since` (epoch ms). */
  after(since: number): Call[] {
    return this.calls.filter((c) => c.at > since);
  }

  /** Waits until some call after `since` satisfies `check`. */
  async waitForCall(what: string, since: number, check: (c: Call) => boolean, timeoutMs = 15_000): Promise<Call> {
    return waitFor(what, () => this.after(since).find(check), timeoutMs);
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin!.end();
    const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(force);
  }
}
