/**
 * A load-generator process for bench/writepath.ts: one grpc-js client per process, so two
 * processes can drive a server past what one client process can send. Started with `fork`;
 * each request ({@link WorkerRequest}) runs once and is answered with a {@link WorkerReport}.
 * It exits when its parent disconnects.
 */
import { RosterClient } from '../src/client/index.js';
import { runInFlight } from './harness.js';
import { benchInstance } from './instances.js';

export interface WorkerRequest {
  readonly type: 'register';
  readonly address: string;
  /** Instance names are `<prefix>-…`: distinct per round and per process. */
  readonly prefix: string;
  readonly durationMs: number;
  readonly concurrency: number;
}

export interface WorkerReport {
  readonly ok: number;
  readonly failed: number;
  readonly seconds: number;
  /** This process's CPU (user + system) during the run. */
  readonly cpuSeconds: number;
  readonly firstError?: string;
}

let client: RosterClient | undefined;

process.on('message', (request: WorkerRequest) => {
  client ??= new RosterClient(request.address, { channelOptions: { 'grpc.per_rpc_retry_buffer_size': 0 }, timeoutMs: 30_000 });
  const used = client;
  const before = process.cpuUsage();
  void runInFlight({
    concurrency: request.concurrency,
    durationMs: request.durationMs,
    operation: (i) => used.register(benchInstance(i, request.prefix)).then(() => true),
  }).then((result) => {
    const cpu = process.cpuUsage(before);
    const report: WorkerReport = { ...result, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
    process.send?.(report);
  });
});
process.on('disconnect', () => {
  client?.close();
  process.exit(0);
});
