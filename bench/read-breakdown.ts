/**
 * `node --import tsx --expose-gc bench/read-breakdown.ts [instances]`: where the time of one
 * full registry read goes, in one process and without the network: the registry snapshot, the
 * domain → proto conversion, the protobuf encoding of 1000-instance chunks (as the server
 * sends them) and their decoding (as a client does). Also the JS heap the registry holds.
 * Prints the median of 5 rounds of each phase; a diagnostic, not one of `npm run bench`'s rows.
 */
import { SystemClock } from '../src/core/clock.js';
import { Registry } from '../src/core/registry.js';
import { Instance } from '../src/gen/roster/v1/instance.js';
import { ListApplicationsResponse } from '../src/gen/roster/v1/registry_service.js';
import { instanceToProto, registrationFromProto } from '../src/grpc/convert.js';
import { median } from './harness.js';
import { benchInstance } from './instances.js';

const ROUNDS = 5;
const CHUNK = 1000;
const total = Number(process.argv[2] ?? 100_000);

const heapUsedMiB = (): number => {
  globalThis.gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

const heapBefore = heapUsedMiB();
const registry = new Registry({ clock: new SystemClock() });
for (let i = 0; i < total; i++) registry.register(registrationFromProto(Instance.fromPartial(benchInstance(i, 'size'))));
const heapAfter = heapUsedMiB();

const phases = { snapshot: [] as number[], toProto: [] as number[], encode: [] as number[], decode: [] as number[] };
let bytes = 0;
for (let round = 0; round < ROUNDS; round++) {
  let start = performance.now();
  const lap = (phase: keyof typeof phases): void => {
    const now = performance.now();
    phases[phase].push(now - start);
    start = now;
  };
  const snapshot = registry.snapshot();
  lap('snapshot');
  const instances = snapshot.instances.map(instanceToProto);
  lap('toProto');
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < instances.length; i += CHUNK) {
    const chunk = { revision: snapshot.revision, reconcileHash: snapshot.reconcileHash, totalInstances: total, nodeId: '', instances: instances.slice(i, i + CHUNK) };
    chunks.push(ListApplicationsResponse.encode(chunk).finish());
  }
  lap('encode');
  let decoded = 0;
  for (const chunk of chunks) decoded += ListApplicationsResponse.decode(chunk).instances.length;
  lap('decode');
  if (decoded !== total) throw new Error(`decoded ${decoded} of ${total}`);
  bytes = chunks.reduce((sum, c) => sum + c.length, 0);
}

console.log(`${total} instances, ${(bytes / 2 ** 20).toFixed(1)} MiB encoded, registry heap ${(heapAfter - heapBefore).toFixed(1)} MiB` +
  (globalThis.gc === undefined ? ' (run with --expose-gc for an exact heap figure)' : ''));
for (const [phase, times] of Object.entries(phases)) console.log(`${phase.padEnd(9)} ${median(times).toFixed(1)} ms`);
