/**
 * `npm run bench -- --ab OTHER_CHECKOUT [--quick] [--out FILE]`: this checkout's Roster (A) and
 * another's (B, e.g. a `git worktree` of main) side by side, for a change to the write path
 * whose effect is a few percent. Both nodes run at once; one bench/replay child (Go, 64
 * callers on one connection, requests encoded before the timed window) registers new
 * instances on them in short rounds, alternating A-B and B-A, so that a slow spell of this
 * shared machine falls on both. Each pair of rounds gives a ratio B / A of calls/s and of the
 * server's CPU per call; the median ratio and its range are the result.
 *
 * Why pairs: on the 2-vCPU guests these benchmarks run on, the same build's Register rate
 * moved from 20k to 32k/s between whole runs minutes apart, and between the two rounds of a
 * pair by up to ±15 % (`--ab` of a checkout against itself). Build both checkouts first
 * (`npm run build`): a checkout edited since its build runs src/ through tsx, which is slower.
 * Writes bench/results/ab.json.
 */
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Instance } from '../src/gen/roster/v1/instance.js';
import { RegistryServiceService } from '../src/gen/roster/v1/registry_service.js';
import { rosterRunsFrom, type ServerProcess, startRoster, stoppedOnSignal } from './compare/servers.js';
import { median } from './compare/stats.js';
import { describeMachine, writeReport } from './harness.js';
import { benchInstance } from './instances.js';
import { Replay, requestsFor } from './replay.js';

const RESULTS = fileURLToPath(new URL('./results/ab.json', import.meta.url));
const THIS_CHECKOUT = fileURLToPath(new URL('../', import.meta.url));
const CALLERS = 64;

const BUDGETS = {
  full: { warmupMs: 1_500, pairs: 12, roundMs: 2_000 },
  quick: { warmupMs: 300, pairs: 2, roundMs: 500 },
} as const;

type Side = 'A' | 'B';

interface Round {
  readonly callsPerSecond: number;
  readonly serverMicrosPerCall: number;
  /** Cores the server's threads spent runnable but waiting for a CPU. */
  readonly serverWaitCores: number;
  readonly loadMicrosPerCall: number;
}

/** Replays `durationMs` of Register calls of new instances (named by `prefix`) at `server`. */
async function round(replay: Replay, server: ServerProcess, prefix: string, durationMs: number): Promise<Round> {
  const count = requestsFor(durationMs);
  const loaded = await replay.load(
    { kind: 'grpc', target: server.address, method: RegistryServiceService.register.path },
    (function* () {
      for (let k = 0; k < count; k++) yield RegistryServiceService.register.requestSerialize({ instance: Instance.fromPartial(benchInstance(k, prefix)) });
    })(),
  );
  const cpuBefore = server.cpuSeconds();
  const waitBefore = server.waitSeconds();
  const result = await replay.run(loaded, CALLERS, durationMs);
  const serverCpu = server.cpuSeconds() - cpuBefore;
  const serverWait = server.waitSeconds() - waitBefore;
  if (result.failed > 0 || result.ok === 0) throw new Error(`${server.name}: ${result.failed} of ${result.ok + result.failed} calls failed (${result.firstError ?? 'no error reported'})`);
  return {
    callsPerSecond: result.ok / result.seconds,
    serverMicrosPerCall: (serverCpu / result.ok) * 1e6,
    serverWaitCores: serverWait / result.seconds,
    loadMicrosPerCall: (result.cpuSeconds / result.ok) * 1e6,
  };
}

export async function runAb(options: { other: string; quick: boolean; out?: string }): Promise<void> {
  const budget = BUDGETS[options.quick ? 'quick' : 'full'];
  const roots: Record<Side, string> = { A: THIS_CHECKOUT, B: `${resolve(options.other)}/` };
  const runsFrom = { A: rosterRunsFrom(roots.A), B: rosterRunsFrom(roots.B) };
  for (const side of ['A', 'B'] as const) {
    if (runsFrom[side] !== 'dist') process.stderr.write(`note: ${roots[side]} will run src/ through tsx; \`npm run build\` there first\n`);
  }
  const startedAt = new Date();
  const loadBefore = loadavg();
  const replay = Replay.start();
  const servers = new Map<Side, ServerProcess>();
  const rounds: Record<Side, Round[]> = { A: [], B: [] };
  await stoppedOnSignal(
    () => replay.close(),
    async () => {
      try {
        for (const side of ['A', 'B'] as const) servers.set(side, await startRoster({ name: `roster-${side}`, root: roots[side] }));
        for (const side of ['A', 'B'] as const) await round(replay, servers.get(side)!, `ab-warmup-${side}`, budget.warmupMs);
        for (let pair = 0; pair < budget.pairs; pair++) {
          for (const side of pair % 2 === 0 ? (['A', 'B'] as const) : (['B', 'A'] as const)) {
            const result = await round(replay, servers.get(side)!, `ab-${pair}-${side}`, budget.roundMs);
            rounds[side].push(result);
            process.stderr.write(`  pair ${pair + 1} ${side}: ${Math.round(result.callsPerSecond)} calls/s, ${result.serverMicrosPerCall.toFixed(1)} µs of server CPU per call\n`);
          }
        }
      } finally {
        replay.close();
        await Promise.all([...servers.values()].map((s) => s.stop()));
      }
    },
  );

  const summary = (side: Side) => ({
    checkout: roots[side],
    runsFrom: runsFrom[side],
    callsPerSecond: Math.round(median(rounds[side].map((r) => r.callsPerSecond))),
    serverMicrosPerCall: round1(median(rounds[side].map((r) => r.serverMicrosPerCall))),
    serverWaitCores: round2(median(rounds[side].map((r) => r.serverWaitCores))),
    loadMicrosPerCall: round1(median(rounds[side].map((r) => r.loadMicrosPerCall))),
    rounds: rounds[side],
  });
  const ratios = (pick: (r: Round) => number) => {
    const each = rounds.A.map((a, i) => pick(rounds.B[i]!) / pick(a));
    return { median: round3(median(each)), min: round3(Math.min(...each)), max: round3(Math.max(...each)), pairs: each.map(round3) };
  };
  const report = {
    startedAt: startedAt.toISOString(),
    seconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
    quick: options.quick,
    budget,
    callers: CALLERS,
    machine: describeMachine(loadBefore),
    A: summary('A'),
    B: summary('B'),
    bOverA: { callsPerSecond: ratios((r) => r.callsPerSecond), serverMicrosPerCall: ratios((r) => r.serverMicrosPerCall) },
  };
  console.log(table(report));
  writeReport(report, RESULTS, options.out);
}

function table(report: {
  A: { checkout: string; callsPerSecond: number; serverMicrosPerCall: number; serverWaitCores: number; loadMicrosPerCall: number };
  B: { checkout: string; callsPerSecond: number; serverMicrosPerCall: number; serverWaitCores: number; loadMicrosPerCall: number };
  bOverA: Record<'callsPerSecond' | 'serverMicrosPerCall', { median: number; min: number; max: number }>;
}): string {
  const head = ['', 'checkout', 'Register calls/s', 'server µs/call', 'server waiting (cores)', 'load µs/call'];
  const cells = (['A', 'B'] as const).map((side) => {
    const s = report[side];
    return [side, s.checkout, s.callsPerSecond.toLocaleString('en-US'), s.serverMicrosPerCall.toFixed(1), s.serverWaitCores.toFixed(2), s.loadMicrosPerCall.toFixed(1)];
  });
  const ratio = (r: { median: number; min: number; max: number }): string => `${r.median.toFixed(3)} (${r.min.toFixed(2)}-${r.max.toFixed(2)})`;
  cells.push(['B/A', 'median of pairs (range)', ratio(report.bOverA.callsPerSecond), ratio(report.bOverA.serverMicrosPerCall), '', '']);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]): string => c.map((v, i) => v.padEnd(widths[i]!)).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

const round1 = (n: number): number => Number(n.toFixed(1));
const round2 = (n: number): number => Number(n.toFixed(2));
const round3 = (n: number): number => Number(n.toFixed(3));
