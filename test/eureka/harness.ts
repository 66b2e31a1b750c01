import { request } from 'node:http';
import { Registry as PromRegistry } from 'prom-client';
import { FakeClock } from '../../src/core/clock.js';
import { Registry, type RegistryOptions } from '../../src/core/registry.js';
import { eurekaRoutes, type EurekaRoutesOptions } from '../../src/eureka/routes.js';
import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import { silentLogger, WAIT_MS } from '../grpc/helpers.js';

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** Raw bytes: nothing is decompressed behind the test's back. */
  readonly raw: Buffer;
  readonly text: string;
}

/** One HTTP request on 127.0.0.1 with exactly the headers given. */
export function http(port: number, method: string, path: string, options: { headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: options.headers, timeout: WAIT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, raw, text: raw.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

export const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json' };

/** A Eureka JSON registration body, overridable per test. */
export function eurekaInstance(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    app: 'CART',
    hostName: 'cart-1.local',
    ipAddr: '10.0.0.9',
    vipAddress: 'cart',
    secureVipAddress: 'cart-secure',
    port: { $: 8080, '@enabled': 'true' },
    dataCenterInfo: { '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo', name: 'MyOwn' },
    ...overrides,
  };
}

export interface FaceHarness {
  readonly clock: FakeClock;
  readonly registry: Registry;
  readonly server: HttpServer;
  readonly metrics: PromRegistry;
  call(method: string, path: string, options?: { headers?: Record<string, string>; body?: string | Buffer }): Promise<Reply>;
  /** Registers a JSON instance through the face and checks for 204. */
  register(overrides?: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

/** The Eureka face alone on an HTTP server on 127.0.0.1:0, over a registry on a fake clock. */
export async function startFace(options: { registryOptions?: Partial<RegistryOptions>; face?: Partial<Omit<EurekaRoutesOptions, 'registry' | 'clock' | 'logger'>> } = {}): Promise<FaceHarness> {
  const clock = new FakeClock();
  const registry = new Registry({ clock, ...options.registryOptions });
  const metrics = new PromRegistry();
  const server = await startHttpServer({
    port: 0,
    logger: silentLogger(),
    mounts: [eurekaRoutes({ registry, clock, logger: silentLogger(), metrics, ...options.face })],
  });
  const call: FaceHarness['call'] = (method, path, opts) => http(server.port, method, path, opts);
  return {
    clock,
    registry,
    server,
    metrics,
    call,
    async register(overrides = {}) {
      const instance = eurekaInstance(overrides);
      const res = await call('POST', `/eureka/apps/${String(instance.app)}`, { headers: JSON_HEADERS, body: JSON.stringify({ instance }) });
      if (res.status !== 204) throw new Error(`register answered ${res.status}: ${res.text}`);
    },
    close: () => server.close(),
  };
}
