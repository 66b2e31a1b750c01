/**
 * `node --import tsx bench/register-breakdown.ts [instances] [rounds] [OTHER_CHECKOUT]`: where
 * the server's own time of one Register goes, in one process and without the network: decoding
 * the request (src/grpc/write-codec.ts), converting it, the registry's register (validation,
 * interning, the content hash, the store) and encoding the answer. Each round registers
 * `instances` new records (500 apps, as the comparisons' shapes), so the registry grows as a
 * node's does in the register rows; requests are encoded before the first round. Prints each
 * round's nanoseconds per call by phase; a diagnostic, not one of `npm run bench`'s rows.
 *
 * With another checkout (its `src/`, run through tsx like this one's), both codecs and registries
 * are loaded into this process and take turns, round by round in alternating order, each with
 * its own registry: the machine's slow and fast spells then fall on both alike, which
 * separate runs on a noisy guest cannot promise. The last line is the median of the rounds'
 * ratios (other / this: above 1 means this checkout is faster).
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SystemClock } from '../src/core/clock.js';
import { Instance } from '../src/gen/roster/v1/instance.js';
import { RegisterRequest } from '../src/gen/roster/v1/registry_service.js';
import { benchInstance } from './instances.js';

const instances = Number(process.argv[2] ?? 100_000);
const rounds = Number(process.argv[3] ?? 6);
const other = process.argv[4];

/** Milliseconds spent in each phase, summed over a round. */
interface Phases {
  decode: number;
  convert: number;
  register: number;
  encode: number;
}

interface Side {
  readonly name: string;
  readonly requests: Buffer[];
  /** Serves one Register, adding each phase's time to `ms`. */
  register(request: Buffer, ms: Phases): void;
}

async function side(root: string, name: string): Promise<Side> {
  const from = (path: string): Promise<Record<string, unknown>> => import(pathToFileURL(resolve(root, path)).href);
  const codec = (await from('src/grpc/write-codec.ts')) as typeof import('../src/grpc/write-codec.js');
  const convert = (await from('src/grpc/convert.ts')) as typeof import('../src/grpc/convert.js');
  const { Registry } = (await from('src/core/registry.ts')) as typeof import('../src/core/registry.js');
  const registry = new Registry({ clock: new SystemClock() });
  const requests: Buffer[] = [];
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < instances; i++) requests.push(Buffer.from(RegisterRequest.encode({ instance: Instance.fromPartial(benchInstance(i, `${name}${round}`)) }).finish()));
  }
  return {
    name,
    requests,
    register(bytes, ms) {
      const t0 = performance.now();
      const request = codec.readRegisterRequest(bytes);
      if (request === undefined) throw new Error('the hand decoder refused a benchmark request');
      const t1 = performance.now();
      const input = convert.registrationFromProto(request.instance);
      const t2 = performance.now();
      const registered = registry.register(input);
      const t3 = performance.now();
      codec.encodeRegisterResponse(registered, request);
      const t4 = performance.now();
      ms.decode += t1 - t0;
      ms.convert += t2 - t1;
      ms.register += t3 - t2;
      ms.encode += t4 - t3;
    },
  };
}

const sides = [await side(resolve(import.meta.dirname, '..'), 'this')];
if (other !== undefined) sides.push(await side(resolve(other), 'other'));
/** Per round, other / this: of the decode alone, and of the whole call. */
const ratios = { decode: [] as number[], total: [] as number[] };
for (let round = 0; round < rounds; round++) {
  const totals = new Map<string, { decode: number; total: number }>();
  for (const s of round % 2 === 0 ? sides : [...sides].reverse()) {
    const ms: Phases = { decode: 0, convert: 0, register: 0, encode: 0 };
    for (let i = round * instances; i < (round + 1) * instances; i++) s.register(s.requests[i]!, ms);
    const ns = (v: number): string => `${Math.round((v * 1e6) / instances)} ns`;
    const total = ms.decode + ms.convert + ms.register + ms.encode;
    totals.set(s.name, { decode: ms.decode, total });
    console.log(
      `${other === undefined ? '' : `${s.name.padEnd(5)} `}round ${round + 1} (${(round + 1) * instances} instances after): decode ${ns(ms.decode)}, convert ${ns(ms.convert)}, register ${ns(ms.register)}, encode ${ns(ms.encode)}, total ${ns(total)} per call`,
    );
  }
  if (other !== undefined) {
    const [mine, theirs] = [totals.get('this')!, totals.get('other')!];
    ratios.decode.push(theirs.decode / mine.decode);
    ratios.total.push(theirs.total / mine.total);
  }
}
for (const [phase, values] of Object.entries(ratios)) {
  if (values.length === 0) continue;
  const sorted = [...values].sort((a, b) => a - b);
  console.log(`other / this, ${phase} per call: median ${sorted[sorted.length >> 1]!.toFixed(3)} over ${values.length} rounds (${sorted[0]!.toFixed(2)}-${sorted.at(-1)!.toFixed(2)})`);
}
