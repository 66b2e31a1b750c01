import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { FakeClock } from '../../src/core/clock.js';
import { Registry, type RegistryOptions } from '../../src/core/registry.js';
import { Instance, InstanceStatus, type DeepPartial } from '../../src/gen/roster/v1/instance.js';
import { RegistryServiceClient } from '../../src/gen/roster/v1/registry_service.js';
import { startGrpcServer, type GrpcServerHandle, type GrpcServerOptions } from '../../src/grpc/server.js';

export const silentLogger = (): Logger => pino({ level: 'silent' });

/** How long any single wait in these tests may take before it fails the test. */
export const WAIT_MS = 10_000;

export interface Harness {
  readonly clock: FakeClock;
  readonly registry: Registry;
  readonly server: GrpcServerHandle;
  readonly client: RegistryServiceClient;
  readonly address: string;
  close(): Promise<void>;
}

/** Runs `body` against a fresh harness and always closes it. */
export async function withHarness(options: Parameters<typeof startHarness>[0], body: (h: Harness) => Promise<void>): Promise<void> {
  const h = await startHarness(options);
  try {
    await body(h);
  } finally {
    await h.close();
  }
}

/** A real server on 127.0.0.1:0 over a real registry, both on one fake clock, and a client. */
export async function startHarness(
  options: Partial<Omit<GrpcServerOptions, 'registry' | 'clock'>> & {
    registryOptions?: Partial<RegistryOptions>;
    /** A registry built by the test on `clock`. */
    prebuilt?: { clock: FakeClock; registry: Registry };
  } = {},
): Promise<Harness> {
  const { registryOptions, prebuilt, ...serverOptions } = options;
  const clock = prebuilt?.clock ?? new FakeClock();
  const registry = prebuilt?.registry ?? new Registry({ clock, ...registryOptions });
  const server = await startGrpcServer({ logger: silentLogger(), ...serverOptions, clock, registry, port: 0 });
  const address = `127.0.0.1:${server.port}`;
  const client = newClient(address);
  return {
    clock,
    registry,
    server,
    client,
    address,
    async close() {
      client.close();
      await server.shutdown(1000);
    },
  };
}

export function newClient(address: string): RegistryServiceClient {
  return new RegistryServiceClient(address, grpc.credentials.createInsecure(), { 'grpc.per_rpc_retry_buffer_size': 0 });
}

type UnaryMethod<Req, Res> = (request: Req, metadata: grpc.Metadata, options: Partial<grpc.CallOptions>, callback: (error: grpc.ServiceError | null, response: Res) => void) => grpc.ClientUnaryCall;

/** Calls a unary method with a deadline: `await call(client.getInstance.bind(client), {...})`. */
export function call<Req, Res>(method: UnaryMethod<Req, Res>, request: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(request, new grpc.Metadata(), { deadline: Date.now() + WAIT_MS }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** Asserts that `promise` fails with `code` and details matching `details`. */
export async function rejectsWith(promise: Promise<unknown>, code: grpc.status, details?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: grpc.ServiceError) => {
    assert.equal(grpc.status[err.code], grpc.status[code], `details: ${err.details}`);
    if (details) assert.match(err.details, details);
    return true;
  });
}

/** Reads a server stream to its end (bounded by WAIT_MS): every message, or the error it ended with. */
export function readAll<T>(stream: grpc.ClientReadableStream<T>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const messages: T[] = [];
    const timer = setTimeout(() => {
      stream.cancel();
      reject(new Error(`stream did not end within ${WAIT_MS} ms`));
    }, WAIT_MS);
    stream.on('data', (m: T) => messages.push(m));
    stream.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    stream.on('end', () => {
      clearTimeout(timer);
      resolve(messages);
    });
  });
}

/** Pulls messages from a server stream one at a time, each wait bounded. */
export class StreamReader<T> {
  readonly #messages: T[] = [];
  readonly #waiters: Array<() => void> = [];
  #error: grpc.ServiceError | undefined;
  #ended = false;

  constructor(readonly stream: grpc.ClientReadableStream<T>) {
    stream.on('data', (m: T) => {
      this.#messages.push(m);
      this.#wake();
    });
    stream.on('error', (err: grpc.ServiceError) => {
      this.#error = err;
      this.#wake();
    });
    stream.on('end', () => {
      this.#ended = true;
      this.#wake();
    });
  }

  /** The next message; fails if the stream ends or errors first, or nothing comes in time. */
  async next(timeoutMs = WAIT_MS): Promise<T> {
    await this.#until(() => this.#messages.length > 0 || this.#error !== undefined || this.#ended, timeoutMs, 'a message');
    const message = this.#messages.shift();
    if (message !== undefined) return message;
    throw this.#error ?? new Error('stream ended');
  }

  /** The next message satisfying `predicate`, skipping others. */
  async nextMatching(predicate: (m: T) => boolean, timeoutMs = WAIT_MS): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = await this.next(Math.max(1, deadline - Date.now()));
      if (predicate(m)) return m;
    }
  }

  /** How the stream ended: undefined for OK, else the error. Messages left unread are ignored. */
  async ended(timeoutMs = WAIT_MS): Promise<grpc.ServiceError | undefined> {
    await this.#until(() => this.#error !== undefined || this.#ended, timeoutMs, 'the end of the stream');
    return this.#error;
  }

  get buffered(): number {
    return this.#messages.length;
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  async #until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    while (!done()) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms`)), timeoutMs);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

export { registration } from '../core/fixtures.js';

/** A proto Instance with every client-set field filled. */
export function protoInstance(overrides: DeepPartial<Instance> = {}): Instance {
  return Instance.fromPartial<DeepPartial<Instance>>({
    app: 'Billing',
    instanceId: 'i-1',
    hostName: 'billing-1.example.internal',
    ipAddr: '10.0.0.1',
    port: { number: 8080, enabled: true },
    securePort: { number: 8443, enabled: true },
    status: InstanceStatus.INSTANCE_STATUS_UP,
    vipAddress: 'billing,billing-v2',
    secureVipAddress: 'billing-secure',
    zone: 'us-east-1a',
    region: 'us-east-1',
    metadata: { version: '1.2.3', team: 'payments' },
    homePageUrl: 'http://billing-1:8080/',
    statusPageUrl: 'http://billing-1:8080/status',
    healthCheckUrl: 'http://billing-1:8080/health',
    lease: { renewalIntervalSecs: 10, durationSecs: 30 },
    lastDirtyTimestamp: 1_700_000_000_000,
    ...overrides,
  });
}

const BUF = fileURLToPath(new URL('../../node_modules/.bin/buf', import.meta.url));

/** Runs `buf curl` against the server; resolves with its exit code and output (it exits 8 × the gRPC code). */
export function bufCurl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', ...args], { timeout: WAIT_MS }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(err);
      else resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}
