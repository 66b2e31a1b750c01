/**
 * `node --import tsx --expose-gc bench/read-breakdown.ts [instances]`: where the time of one
 * full registry read goes, in one process and without the network: the registry snapshot, the
 * server's encoding of 1000-instance chunks (src/grpc/wire.ts) and the client's decoding
 * (src/client/wire.ts), plus, for comparison, the generated decoder. Also the JS heap the
 * registry holds. Prints the median of 5 rounds of each phase; a diagnostic, not one of
 * `npm run bench`'s rows.
 */
import { SystemClock } from '../src/core/clock.js';
import { Registry } from '../src/core/registry.js';
import { Instance } from '../src/gen/roster/v1/instance.js';
import { decodeListChunk } from '../src/client/wire.js';
import { ListApplicationsResponse } from '../src/gen/roster/v1/registry_service.js';
import { registrationFromProto } from '../src/grpc/convert.js';
import { encodeListChunk } from '../src/grpc/wire.js';
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

const phases = { snapshot: [] as number[], encode: [] as number[], decode: [] as number[], generatedDecode: [] as number[] };
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
  const header = { revision: snapshot.revision, reconcileHash: snapshot.reconcileHash, totalInstances: total, nodeId: '' };
  const chunks: Buffer[] = [];
  for (let i = 0; i < snapshot.instances.length; ) {
    const chunk = encodeListChunk(header, snapshot.instances, i, CHUNK);
    chunks.push(chunk.bytes);
    i = chunk.next;
  }
  lap('encode');
  let decoded = 0;
  for (const chunk of chunks) decoded += decodeListChunk(chunk).instances.length;
  lap('decode');
  for (const chunk of chunks) ListApplicationsResponse.decode(chunk);
  lap('generatedDecode');
  if (decoded !== total) throw new Error(`decoded ${decoded} of ${total}`);
  bytes = chunks.reduce((sum, c) => sum + c.length, 0);
}

console.log(
  `${total} instances, ${(bytes / 2 ** 20).toFixed(1)} MiB encoded, registry heap ${(heapAfter - heapBefore).toFixed(1)} MiB` +
    (globalThis.gc === undefined ? ' (run with --expose-gc for an exact heap figure)' : ''),
);
for (const [phase, times] of Object.entries(phases)) console.log(`${phase.padEnd(16)} ${median(times).toFixed(1)} ms`);
