/**
 * A proxyless xDS client in its own process (grpc-js-xds reads its bootstrap once per
 * process): `node --import tsx test/xds/xds-client.ts TARGET` with GRPC_XDS_BOOTSTRAP_CONFIG
 * set calls Echo/Who on TARGET every few milliseconds and prints one JSON line per call,
 * `{"at":EPOCH_MS,"server":"NAME"}` or `{"at":EPOCH_MS,"error":"CODE details"}`, until its
 * stdin closes or MAX_MS pass.
 */
import * as grpc from '@grpc/grpc-js';
import * as xds from '@grpc/grpc-js-xds';
import { ECHO_SERVICE } from './echo.js';

const CALL_INTERVAL_MS = 5;
const CALL_DEADLINE_MS = 500;
const MAX_MS = 120_000;

xds.register();
const target = process.argv[2] ?? 'xds:///echo';
const Client = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');
const client = new Client(target, grpc.credentials.createInsecure());
const stopAt = Date.now() + MAX_MS;
let stopping = false;
process.stdin.on('close', () => (stopping = true));
process.stdin.resume();

const call = (): Promise<void> =>
  new Promise((resolve) => {
    client.makeUnaryRequest(
      '/roster.test.Echo/Who',
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      { deadline: Date.now() + CALL_DEADLINE_MS },
      (err: grpc.ServiceError | null, reply?: Buffer) => {
        const at = Date.now();
        const line = err ? { at, error: `${grpc.status[err.code]} ${err.details}` } : { at, server: reply?.toString() };
        process.stdout.write(`${JSON.stringify(line)}\n`);
        resolve();
      },
    );
  });

while (!stopping && Date.now() < stopAt) {
  await call();
  await new Promise((r) => setTimeout(r, CALL_INTERVAL_MS));
}
client.close();
process.exit(0);
