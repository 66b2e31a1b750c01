/**
 * The pure arithmetic of the Roster-vs-etcd comparison: percentiles, CPU and RSS from /proc
 * text, and the Roster/etcd ratio oriented so that > 1 always means Roster did better.
 * Kept apart from the processes so test/bench/compare-etcd.test.ts can check it directly.
 */

/** USER_HZ: the unit of /proc CPU times, 100 on every Linux platform Node runs on. */
export const CLOCK_TICKS_PER_SECOND = 100;

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN when there are none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile: p must be within 0..100, got ${p}`);
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** p50 / p99 / max of latency samples in ms, and how many there were. */
export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export function summarize(samples: readonly number[]): LatencySummary {
  return {
    count: samples.length,
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    max: samples.length === 0 ? Number.NaN : samples.reduce((a, b) => Math.max(b, a), -Infinity),
  };
}

/**
 * CPU seconds (user + system) from the text of /proc/<pid>/stat: fields 14 and 15, counted
 * after the parenthesised command name (which may itself hold spaces and parentheses).
 */
export function cpuSecondsFromStat(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const user = Number(fields[11]);
  const system = Number(fields[12]);
  if (!Number.isFinite(user) || !Number.isFinite(system)) throw new Error('unexpected /proc/<pid>/stat format');
  return (user + system) / CLOCK_TICKS_PER_SECOND;
}

/**
 * Seconds a thread has spent runnable but not running (waiting on a run queue for a CPU): the
 * second field of /proc/<pid>/task/<tid>/schedstat, in nanoseconds.
 */
export function waitSecondsFromSchedstat(schedstat: string): number {
  const fields = schedstat.trim().split(' ');
  const waited = Number(fields[1]);
  if (fields.length !== 3 || !Number.isFinite(waited)) throw new Error('unexpected /proc/<pid>/task/<tid>/schedstat format');
  return waited / 1e9;
}

/** A `Vm*:  N kB` field of /proc/<pid>/status, in bytes. */
export function statusBytes(status: string, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (match === null) throw new Error(`no ${field} in /proc/<pid>/status`);
  return Number(match[1]) * 1024;
}

/** Whether a bigger number is the better one: throughput yes; latency, time and memory no. */
export type Better = 'higher' | 'lower';

/**
 * Roster/etcd oriented so that > 1 means Roster is better: roster/etcd for throughput,
 * etcd/roster for latency, durations and memory. Undefined when either side is missing or 0.
 */
export function advantage(roster: number, etcd: number, better: Better): number | undefined {
  if (!Number.isFinite(roster) || !Number.isFinite(etcd) || roster <= 0 || etcd <= 0) return undefined;
  return better === 'higher' ? roster / etcd : etcd / roster;
}

/** A target from issue #12's table: a minimum advantage, or an absolute bound on Roster's value. */
export interface CompareTarget {
  /** Roster's advantage (see {@link advantage}) must be at least this. */
  readonly minAdvantage?: number;
  /** Roster's own value must be at most this (ms, MiB). */
  readonly rosterAtMost?: number;
  /** The words of the table, shown in the output. */
  readonly text: string;
}

/** Met, not met, or undefined when the row has no target or no number to judge. */
export function targetMet(target: CompareTarget | undefined, roster: number, adv: number | undefined): boolean | undefined {
  if (target === undefined) return undefined;
  const checks: boolean[] = [];
  if (target.minAdvantage !== undefined) {
    if (adv === undefined) return undefined;
    checks.push(adv >= target.minAdvantage);
  }
  if (target.rosterAtMost !== undefined) {
    if (!Number.isFinite(roster)) return undefined;
    checks.push(roster <= target.rosterAtMost);
  }
  return checks.length === 0 ? undefined : checks.every(Boolean);
}

/** Cores used over a window: CPU seconds spent divided by wall seconds. */
export function cores(cpuSeconds: number, wallSeconds: number): number {
  return wallSeconds > 0 ? cpuSeconds / wallSeconds : Number.NaN;
}

/** The smallest key after every key that starts with `prefix`: etcd's range_end for a prefix. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  // Every byte is 0xff: no key follows them all, and etcd reads "\0" as "to the end".
  return Buffer.from([0]);
}
