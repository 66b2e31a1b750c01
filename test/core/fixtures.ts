import { FakeClock } from '../../src/core/clock.js';
import { Registry, type RegistryOptions } from '../../src/core/registry.js';
import type { LocalWrite, RegistrationInput } from '../../src/core/types.js';

/** A registration with every field filled, overridable per test. */
export function registration(overrides: Partial<RegistrationInput> = {}): RegistrationInput {
  return {
    app: 'billing',
    instanceId: 'i-1',
    hostName: 'billing-1.example.internal',
    ipAddr: '10.0.0.1',
    port: { number: 8080, enabled: true },
    securePort: { number: 8443, enabled: false },
    status: 'UP',
    vipAddress: 'billing,billing-v2',
    secureVipAddress: 'billing-secure',
    zone: 'us-east-1a',
    region: 'us-east-1',
    metadata: { version: '1.2.3' },
    homePageUrl: 'http://billing-1:8080/',
    statusPageUrl: 'http://billing-1:8080/status',
    healthCheckUrl: 'http://billing-1:8080/health',
    renewalIntervalSecs: 30,
    durationSecs: 90,
    lastDirtyTimestamp: 1_000,
    ...overrides,
  };
}

/** A started registry on a fake clock that records its local writes. */
export function newRegistry(options: Partial<Omit<RegistryOptions, 'clock'>> & { clock?: FakeClock } = {}): {
  clock: FakeClock;
  registry: Registry;
  writes: LocalWrite[];
} {
  const clock = options.clock ?? new FakeClock();
  const writes: LocalWrite[] = [];
  const registry = new Registry({ clock, onLocalWrite: (w) => writes.push(w), ...options });
  registry.start();
  return { clock, registry, writes };
}
