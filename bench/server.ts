/**
 * The server side of the benchmarks, in its own process so that the load generator does not
 * share its core: a full Roster node (startNode, as `roster serve` runs it) on 127.0.0.1:0.
 *
 * Started by bench/harness.ts with `fork` (node --import tsx --expose-gc bench/server.ts
 * '<json flags>'); it talks to its parent over the IPC channel only:
 *   → {type: 'ready', port, httpPort}             once serving
 *   ← {id, type: 'populate', from, to, prefix}     registers instances [from, to) in-process
 *   ← {id, type: 'gc'}                             runs a full garbage collection
 *   ← {id, type: 'stats'}                          just answers
 *   → {id, ok: true, ...} | {id, ok: false, error} the answer to a request
 * It exits when the parent disconnects.
 */
import { resolveConfig } from '../src/cli/config.js';
import { createLogger } from '../src/cli/logging.js';
import { startNode } from '../src/cli/node.js';
import { Instance } from '../src/gen/roster/v1/instance.js';
import { registrationFromProto } from '../src/grpc/convert.js';
import { benchInstance } from './instances.js';

export type ServerRequest =
  | { readonly id: number; readonly type: 'populate'; readonly from: number; readonly to: number; readonly prefix: string }
  | { readonly id: number; readonly type: 'gc' | 'stats' };

export type ServerMessage =
  | { readonly type: 'ready'; readonly port: number; readonly httpPort: number }
  | { readonly id: number; readonly ok: true; readonly size: number; readonly memory: NodeJS.MemoryUsage }
  | { readonly id: number; readonly ok: false; readonly error: string };

const send = (message: ServerMessage): void => {
  process.send?.(message);
};

const flags: Record<string, unknown> = JSON.parse(process.argv[2] ?? '{}');
// The environment is left out on purpose: a stray ROSTER_* variable must not skew a benchmark.
const config = resolveConfig({ flags: { port: 0, httpPort: 0, logLevel: 'silent', ...flags } });
const node = await startNode(config, createLogger(config.logLevel));

process.on('message', (request: ServerRequest) => {
  try {
    if (request.type === 'populate') {
      // Through the same conversion and validation as the Register handler, minus the wire.
      for (let i = request.from; i < request.to; i++) {
        node.registry.register(registrationFromProto(Instance.fromPartial(benchInstance(i, request.prefix))));
      }
    } else if (request.type === 'gc') {
      globalThis.gc?.();
    }
    send({ id: request.id, ok: true, size: node.registry.stats().size, memory: process.memoryUsage() });
  } catch (err) {
    send({ id: request.id, ok: false, error: err instanceof Error ? err.message : String(err) });
  }
});
process.on('disconnect', () => {
  void node.stop().finally(() => process.exit(0));
});

send({ type: 'ready', port: node.grpcPort, httpPort: node.httpPort });
