/**
 * `npm run bench -- --floor [--quick] [--out FILE]`: how much of one Node thread a unary gRPC
 * call costs before any registry work, next to Roster. The same replayed calls (bench/replay, Go,
 * 64 callers, requests encoded before the timed window) go to a Roster node and to three bare
 * servers that answer every call with fixed bytes: one on node:http2, answering as Roster's
 * unary fast path does (src/grpc/unary-fast-path.ts), one on grpc-js (both bench/floor-server.js),
 * and one on Roster's own HTTP/2 (bench/floor-h2.ts, src/grpc/http2/), which the port runs.
 * Rounds alternate between the servers. Each row: calls/s, the server's CPU per call and cores,
 * the load generator's CPU per call. Roster's distance from the node:http2 server is its own
 * work per call; the node:http2 server's CPU per call bounds what any Node server answering
 * unary gRPC on one thread can reach (1 s / that). Writes bench/results/floor.json.
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Instance } from '../src/gen/roster/v1/instance.js';
import { RegistryServiceService } from '../src/gen/roster/v1/registry_service.js';
import { rosterRunsFrom, ServerProcess, startRoster, stoppedOnSignal } from './compare/servers.js';
import { median } from './compare/stats.js';
import { grpcInstance, recordKey } from './compare-eureka-records.js';
import { describeMachine, writeReport } from './harness.js';
import { Replay, requestsFor, type ReplayResult } from './replay.js';
import { freePorts } from '../test/support/ports.js';

const RESULTS = fileURLToPath(new URL('./results/floor.json', import.meta.url));
const FLOOR_SERVER = fileURLToPath(new URL('./floor-server.js', import.meta.url));
const FLOOR_H2 = fileURLToPath(new URL('./floor-h2.ts', import.meta.url));
const CALLERS = 64;
/** The bare server on Roster's HTTP/2 answers faster than the replayer's usual supply (60k/s): 70-75k/s here. */
const BARE_HTTP2_REQUESTS_PER_SECOND = 120_000;
/** Records registered on Roster before the rounds, so heartbeats find them; register rounds rewrite them. */
const RECORDS = 10_000;
const PREFIX = 'floor';
const LISTEN_TIMEOUT_MS = 10_000;
/** Registering the records takes about a second. */
const SEED_TIMEOUT_MS = 30_000;

const BUDGETS = {
  full: { warmupMs: 2_000, rounds: 3, roundMs: 4_000 },
  quick: { warmupMs: 300, rounds: 1, roundMs: 800 },
} as const;

type ServerKind = 'roster' | 'http2' | 'grpc-js' | 'roster-http2';
const SERVERS: readonly ServerKind[] = ['roster', 'http2', 'grpc-js', 'roster-http2'];
type Method = 'Heartbeat' | 'Register';
const METHODS: readonly Method[] = ['Heartbeat', 'Register'];

interface Round {
  readonly callsPerSecond: number;
  readonly serverMicrosPerCall: number;
  readonly serverCores: number;
  readonly loadMicrosPerCall: number;
  readonly failed: number;
}

/** A bare server of bench/floor-server.js, answering once it printed "listening". */
async function startBare(kind: Exclude<ServerKind, 'roster'>): Promise<ServerProcess> {
  const [port] = (await freePorts(1)) as [number];
  const args = kind === 'roster-http2' ? ['--import', 'tsx', FLOOR_H2, String(port)] : [FLOOR_SERVER, kind, String(port)];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const server = new ServerProcess(kind, child, `127.0.0.1:${port}`);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} floor server did not listen within ${LISTEN_TIMEOUT_MS} ms: ${server.stderrTail}`)), LISTEN_TIMEOUT_MS);
    createInterface({ input: child.stdout! }).once('line', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${kind} floor server exited (${code}): ${server.stderrTail}`));
    });
  });
  return server;
}

/** The `k`-th request of a method's rounds: as RosterClient sends it, over the same records. */
function request(method: Method, k: number, dirty: number): Uint8Array {
  const i = k % RECORDS;
  if (method === 'Register') {
    return RegistryServiceService.register.requestSerialize({ instance: Instance.fromPartial(grpcInstance(i, PREFIX, dirty + k)) });
  }
  const { app, instanceId } = recordKey(i, PREFIX);
  return RegistryServiceService.heartbeat.requestSerialize({ app, instanceId, lastDirtyTimestamp: 0 });
}

/** Registers the {@link RECORDS} records on Roster (the run ends when they are out) so that heartbeats find them. */
async function seed(replay: Replay, roster: ServerProcess, dirty: number): Promise<void> {
  const loaded = await replay.load(
    { kind: 'grpc', target: roster.address, method: RegistryServiceService.register.path },
    (function* () {
      for (let k = 0; k < RECORDS; k++) yield request('Register', k, dirty);
    })(),
  );
  const result = await replay.run(loaded, CALLERS, SEED_TIMEOUT_MS);
  if (result.ok !== RECORDS) throw new Error(`registered ${result.ok} of ${RECORDS} records on Roster`);
}

/** Replays `durationMs` of `method` calls at `server` and reads the server's CPU around it. */
async function round(replay: Replay, server: ServerProcess, method: Method, durationMs: number, dirty: number): Promise<Round> {
  const path = RegistryServiceService[method === 'Register' ? 'register' : 'heartbeat'].path;
  const count = requestsFor(durationMs, server.name === 'roster-http2' ? BARE_HTTP2_REQUESTS_PER_SECOND : undefined);
  const loaded = await replay.load(
    { kind: 'grpc', target: server.address, method: path },
    (function* () {
      for (let k = 0; k < count; k++) yield request(method, k, dirty);
    })(),
  );
  const cpuBefore = server.cpuSeconds();
  const result: ReplayResult = await replay.run(loaded, CALLERS, durationMs);
  const serverCpu = server.cpuSeconds() - cpuBefore;
  if (result.ok === 0) throw new Error(`${server.name} ${method}: no call succeeded (${result.firstError ?? 'no error reported'})`);
  return {
    callsPerSecond: result.ok / result.seconds,
    serverMicrosPerCall: (serverCpu / result.ok) * 1e6,
    serverCores: serverCpu / result.seconds,
    loadMicrosPerCall: (result.cpuSeconds / result.ok) * 1e6,
    failed: result.failed,
  };
}

export async function runFloor(options: { quick: boolean; out?: string }): Promise<void> {
  const budget = BUDGETS[options.quick ? 'quick' : 'full'];
  const runsFrom = rosterRunsFrom();
  if (runsFrom !== 'dist') process.stderr.write('note: bin/roster.js will run src/ through tsx; `npm run build` first to measure what `npm ci` installs\n');
  const startedAt = new Date();
  const loadBefore = loadavg();
  const replay = Replay.start();
  const servers = new Map<ServerKind, ServerProcess>();
  const rounds = new Map<string, Round[]>();
  const dirty = Date.now();
  await stoppedOnSignal(
    () => replay.close(),
    async () => {
      try {
        servers.set('roster', await startRoster());
        servers.set('http2', await startBare('http2'));
        servers.set('grpc-js', await startBare('grpc-js'));
        servers.set('roster-http2', await startBare('roster-http2'));
        await seed(replay, servers.get('roster')!, dirty);
        for (const kind of SERVERS) {
          for (const method of METHODS) await round(replay, servers.get(kind)!, method, budget.warmupMs, dirty);
        }
        for (let r = 0; r < budget.rounds; r++) {
          for (const method of METHODS) {
            for (const kind of SERVERS) {
              const key = `${kind} ${method}`;
              const result = await round(replay, servers.get(kind)!, method, budget.roundMs, dirty + (r + 1) * 1_000_000);
              rounds.set(key, [...(rounds.get(key) ?? []), result]);
              process.stderr.write(`  ${key}: ${Math.round(result.callsPerSecond)} calls/s, ${result.serverMicrosPerCall.toFixed(1)} µs of server CPU per call\n`);
            }
          }
        }
      } finally {
        replay.close();
        await Promise.all([...servers.values()].map((s) => s.stop()));
      }
    },
  );

  const rows = METHODS.flatMap((method) =>
    SERVERS.map((kind) => {
      const samples = rounds.get(`${kind} ${method}`) ?? [];
      const of = (pick: (r: Round) => number): number => median(samples.map(pick));
      return {
        server: kind,
        method,
        callsPerSecond: Math.round(of((r) => r.callsPerSecond)),
        serverMicrosPerCall: Number(of((r) => r.serverMicrosPerCall).toFixed(1)),
        serverCores: Number(of((r) => r.serverCores).toFixed(2)),
        loadMicrosPerCall: Number(of((r) => r.loadMicrosPerCall).toFixed(1)),
        /** What one thread could answer if the server were CPU-bound: 1 s / CPU per call. */
        oneCoreCallsPerSecond: Math.round(1e6 / of((r) => r.serverMicrosPerCall)),
        failed: samples.reduce((sum, r) => sum + r.failed, 0),
        rounds: samples,
      };
    }),
  );
  const floorOf = (method: Method): number => rows.find((r) => r.server === 'http2' && r.method === method)!.serverMicrosPerCall;
  const report = {
    startedAt: startedAt.toISOString(),
    seconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
    quick: options.quick,
    budget,
    callers: CALLERS,
    rosterRunsFrom: runsFrom,
    machine: describeMachine(loadBefore),
    rows: rows.map((row) => ({ ...row, aboveHttp2MicrosPerCall: Number((row.serverMicrosPerCall - floorOf(row.method)).toFixed(1)) })),
  };
  console.log(table(report.rows));
  writeReport(report, RESULTS, options.out);
}

function table(
  rows: readonly {
    server: string;
    method: string;
    callsPerSecond: number;
    serverMicrosPerCall: number;
    serverCores: number;
    loadMicrosPerCall: number;
    oneCoreCallsPerSecond: number;
    aboveHttp2MicrosPerCall: number;
  }[],
): string {
  const head = ['method', 'server', 'calls/s', 'server µs/call', 'server cores', 'load µs/call', '1 core at most', 'above node:http2'];
  const cells = rows.map((r) => [
    r.method,
    r.server,
    r.callsPerSecond.toLocaleString('en-US'),
    r.serverMicrosPerCall.toFixed(1),
    r.serverCores.toFixed(2),
    r.loadMicrosPerCall.toFixed(1),
    `${r.oneCoreCallsPerSecond.toLocaleString('en-US')}/s`,
    `${r.aboveHttp2MicrosPerCall >= 0 ? '+' : ''}${r.aboveHttp2MicrosPerCall.toFixed(1)} µs`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]): string => c.map((v, i) => v.padEnd(widths[i]!)).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}
