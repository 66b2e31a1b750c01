/**
 * `node --import tsx bench/register-breakdown.ts [instances] [rounds]`: where the server's own
 * time of one Register goes, in one process and without the network: decoding the request
 * (src/grpc/write-codec.ts), converting it, the registry's register (validation, interning,
 * the content hash, the store) and encoding the answer. Each round registers `instances` new
 * records (500 apps, as the comparisons' shapes), so the registry grows as a node's does in the
 * register rows; requests are encoded before the first round. Prints each round's nanoseconds
 * per call by phase; a diagnostic, not one of `npm run bench`'s rows.
 */
import { SystemClock } from '../src/core/clock.js';
import { Registry } from '../src/core/registry.js';
import { Instance } from '../src/gen/roster/v1/instance.js';
import { RegisterRequest } from '../src/gen/roster/v1/registry_service.js';
import { registrationFromProto } from '../src/grpc/convert.js';
import { encodeRegisterResponse, readRegisterRequest } from '../src/grpc/write-codec.js';
import { benchInstance } from './instances.js';

const instances = Number(process.argv[2] ?? 100_000);
const rounds = Number(process.argv[3] ?? 6);
const requests: Buffer[] = [];
for (let round = 0; round < rounds; round++) {
  for (let i = 0; i < instances; i++) requests.push(Buffer.from(RegisterRequest.encode({ instance: Instance.fromPartial(benchInstance(i, `r${round}`)) }).finish()));
}

const registry = new Registry({ clock: new SystemClock() });
let next = 0;
for (let round = 0; round < rounds; round++) {
  const ms = { decode: 0, convert: 0, register: 0, encode: 0 };
  for (let i = 0; i < instances; i++) {
    const t0 = performance.now();
    const request = readRegisterRequest(requests[next++]!);
    if (request === undefined) throw new Error('the hand decoder refused a benchmark request');
    const t1 = performance.now();
    const input = registrationFromProto(request.instance);
    const t2 = performance.now();
    const registered = registry.register(input);
    const t3 = performance.now();
    encodeRegisterResponse(registered, request);
    const t4 = performance.now();
    ms.decode += t1 - t0;
    ms.convert += t2 - t1;
    ms.register += t3 - t2;
    ms.encode += t4 - t3;
  }
  const ns = (v: number): string => `${Math.round((v * 1e6) / instances)} ns`;
  const total = ms.decode + ms.convert + ms.register + ms.encode;
  console.log(
    `round ${round + 1} (${(round + 1) * instances} instances after): decode ${ns(ms.decode)}, convert ${ns(ms.convert)}, register ${ns(ms.register)}, encode ${ns(ms.encode)}, total ${ns(total)} per call`,
  );
}
