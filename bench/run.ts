/**
 * `npm run bench -- --compare etcd [--quick] [--out FILE] [--only SHAPE,SHAPE] [--node-args="FLAGS"]`:
 * Roster and etcd side by side instead (bench/compare/compare-etcd.ts; JSON in
 * bench/results/compare-etcd.json); `--node-args` go to every Roster process (a profiler, a preload).
 * `npm run bench -- --compare eureka [--quick] [--out FILE]`: Roster side by side with the Eureka
 * server instead (bench/compare-eureka.ts).
 *
 * `npm run bench -- [--quick] [--out FILE] [--only ID,ID] [--server-flags JSON]`: runs the
 * scenarios of bench/scenarios.ts against a Roster node in a child process (three for the
 * replication suite), prints a table and writes the results as JSON to
 * bench/results/latest.json (and to FILE). `--only` takes scenario ids or suite names.
 * `--server-flags` overrides `roster serve` settings of every suite (every node), e.g.
 * '{"writesPerSecond":50000}'. Targets are reported, not enforced.
 * `--scale N` runs bench/scale.ts instead: one node filled to N instances (see there;
 * `--scale-lease RENEW:DURATION` seconds, `--scale-stop PERCENT`, `--node-args="V8 flags"`).
 * `--floor` runs bench/floor.ts instead: Roster's unary calls next to bare node:http2 and
 * grpc-js servers answering fixed bytes, CPU per call each.
 * `--ab OTHER_CHECKOUT` runs bench/ab.ts instead: this checkout's Register beside another's,
 * in alternating pairs of rounds (for changes worth a few percent).
 */
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { RosterClient } from '../src/client/index.js';
import { compareEureka } from './compare-eureka.js';
import { ServerProcess, describeMachine, writeReport } from './harness.js';
import { CHANNEL_OPTIONS, SUITES, isClusterSuite, type Budget, type ClusterSuite, type Measurement, type Results, type Scenario, type Target } from './scenarios.js';

interface Row {
  readonly id: string;
  readonly suite: string;
  readonly scenario: string;
  readonly result: number;
  readonly unit: string;
  readonly target: Target | undefined;
  readonly met: boolean | undefined;
  readonly details: Readonly<Record<string, unknown>>;
}

const LATEST = fileURLToPath(new URL('./results/latest.json', import.meta.url));

const BUDGETS: Readonly<Record<'full' | 'quick', Budget>> = {
  full: { warmupMs: 1_500, rounds: 5, roundMs: 1_200, reads: 7, replicationWarmupMs: 5_000, replicationWindowMs: 10_000, partitionMs: 3_000 },
  quick: { warmupMs: 300, rounds: 2, roundMs: 500, reads: 3, replicationWarmupMs: 1_000, replicationWindowMs: 3_000, partitionMs: 1_500 },
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      only: { type: 'string' },
      'server-flags': { type: 'string', default: '{}' },
      compare: { type: 'string' },
      scale: { type: 'string' },
      'scale-lease': { type: 'string', default: '30:60' },
      'scale-stop': { type: 'string', default: '10' },
      'node-args': { type: 'string', default: '' },
      floor: { type: 'boolean', default: false },
      ab: { type: 'string' },
    },
  });
  if (values.ab !== undefined) {
    const { runAb } = await import('./ab.js');
    return runAb({ other: values.ab, quick: values.quick, ...(values.out === undefined ? {} : { out: values.out }) });
  }
  if (values.floor) {
    const { runFloor } = await import('./floor.js');
    return runFloor({ quick: values.quick, ...(values.out === undefined ? {} : { out: values.out }) });
  }
  const nodeArgs = values['node-args'].split(/\s+/).filter((a) => a !== '');
  if (values.compare !== undefined) return compare(values.compare, values.quick, values.out, values.only, nodeArgs);
  const flagOverrides: Record<string, unknown> = JSON.parse(values['server-flags']);
  if (values.scale !== undefined) {
    const [renewalSecs, durationSecs] = values['scale-lease'].split(':').map(Number);
    const { runScale } = await import('./scale.js');
    await runScale({
      instances: Number(values.scale),
      renewalSecs: renewalSecs!,
      durationSecs: durationSecs!,
      stopPercent: Number(values['scale-stop']),
      nodeArgs,
      serverFlags: flagOverrides,
      ...(values.out === undefined ? {} : { out: values.out }),
    });
    return;
  }
  const budget = BUDGETS[values.quick ? 'quick' : 'full'];
  const only = values.only === undefined ? undefined : new Set(values.only.split(','));
  const startedAt = new Date();
  const loadBefore = loadavg();
  const rows: Row[] = [];
  const results = new Map<string, Measurement>();

  const selected = <T extends { readonly id: string }>(suite: { readonly name: string; readonly scenarios: readonly T[] }): T[] =>
    suite.scenarios.filter((s) => only === undefined || only.has(s.id) || only.has(suite.name));
  const addRow = (suite: string, scenario: Omit<Scenario, 'run'>, measurement: Measurement): void => {
    results.set(scenario.id, measurement);
    const target = scenario.target?.(results);
    rows.push({
      id: scenario.id,
      suite,
      scenario: scenario.title,
      result: measurement.value,
      unit: scenario.unit,
      target,
      met: target === undefined ? undefined : meets(measurement.value, target),
      details: measurement.details ?? {},
    });
  };

  for (const suite of SUITES) {
    if (isClusterSuite(suite)) {
      const scenarios = selected(suite);
      if (scenarios.length > 0) await runClusterSuite(suite, scenarios, budget, flagOverrides, addRow);
      continue;
    }
    const scenarios = selected(suite);
    if (scenarios.length === 0) continue;
    const server = await ServerProcess.start({ ...suite.serverFlags, ...flagOverrides });
    const client = new RosterClient(server.address, { channelOptions: CHANNEL_OPTIONS, timeoutMs: 30_000 });
    try {
      await suite.setup?.(server);
      for (const scenario of scenarios) {
        process.stderr.write(`running ${scenario.id} ...\n`);
        addRow(suite.name, scenario, await scenario.run({ server, client, budget, results }));
      }
    } finally {
      client.close();
      await server.stop();
    }
  }

  const report = {
    startedAt: startedAt.toISOString(),
    seconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
    budget,
    serverFlags: flagOverrides,
    machine: describeMachine(loadBefore),
    rows,
  };
  console.log(table(rows));
  console.log(`\nload average (1 min) before ${report.machine.loadAverageBefore[0]}, after ${report.machine.loadAverageAfter[0]}; ${report.seconds} s`);
  writeReport(report, LATEST, values.out);
}

/** `--compare SYSTEM`: a side-by-side run against another registry instead of the suites. */
async function compare(system: string, quick: boolean, out: string | undefined, only: string | undefined, nodeArgs: readonly string[]): Promise<void> {
  if (system === 'eureka') return compareEureka({ quick, ...(out === undefined ? {} : { out }) });
  if (system === 'etcd') {
    // Loaded on demand; it exits 2 with the install line when etcd is missing.
    const { runCompareEtcd } = await import('./compare/compare-etcd.js');
    process.exitCode = await runCompareEtcd({ quick, nodeArgs, ...(out === undefined ? {} : { out }), ...(only === undefined ? {} : { only: only.split(',') }) });
    return;
  }
  throw new Error(`--compare: unknown system ${JSON.stringify(system)} (known: eureka, etcd)`);
}

/** Runs a suite that starts its own processes once and reports the selected rows of that run. */
async function runClusterSuite(
  suite: ClusterSuite,
  scenarios: readonly Omit<Scenario, 'run'>[],
  budget: Budget,
  serverFlags: Readonly<Record<string, unknown>>,
  addRow: (suite: string, scenario: Omit<Scenario, 'run'>, measurement: Measurement) => void,
): Promise<void> {
  process.stderr.write(`running ${suite.name} (${scenarios.map((s) => s.id).join(', ')}) ...\n`);
  const measurements: Results = await suite.run({ budget, serverFlags });
  for (const scenario of scenarios) {
    const measurement = measurements.get(scenario.id);
    if (measurement === undefined) throw new Error(`suite ${suite.name} measured nothing for ${scenario.id}`);
    addRow(suite.name, scenario, measurement);
  }
}

function meets(value: number, target: Target): boolean {
  return (target.atLeast === undefined || value >= target.atLeast) && (target.atMost === undefined || value <= target.atMost);
}

function formatNumber(value: number, unit: string): string {
  if (unit === 'ms' || unit === 'MiB') return value.toFixed(1);
  if (unit === 'cores') return value.toFixed(2);
  return Math.round(value).toLocaleString('en-US');
}

function formatTarget(target: Target | undefined, unit: string): string {
  if (target === undefined) return '-';
  const bounds = [...(target.atLeast === undefined ? [] : [`≥ ${formatNumber(target.atLeast, unit)}`]), ...(target.atMost === undefined ? [] : [`≤ ${formatNumber(target.atMost, unit)}`])];
  return bounds.join(', ') + (target.note === undefined ? '' : ` (${target.note})`);
}

/** A Markdown table, so the output can be pasted into BENCHMARKS.md as it is. */
function table(rows: readonly Row[]): string {
  const header = ['scenario', 'result', 'unit', 'target', 'met'];
  const cells = rows.map((row) => [row.scenario, formatNumber(row.result, row.unit), row.unit, formatTarget(row.target, row.unit), row.met === undefined ? '-' : row.met ? 'yes' : 'no']);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]): string => `| ${c.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
