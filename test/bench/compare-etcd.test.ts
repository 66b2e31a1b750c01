import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { compareTable, runCompareEtcd, type CompareRow } from '../../bench/compare/compare-etcd.js';
import { etcdVersion } from '../../bench/compare/servers.js';
import { advantage, cores, cpuSecondsFromStat, median, percentile, prefixEnd, statusBytes, summarize, targetMet, waitSecondsFromSchedstat } from '../../bench/compare/stats.js';

describe('compare-etcd arithmetic', () => {
  it('takes nearest-rank percentiles of unsorted samples', () => {
    const samples = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1
    assert.equal(percentile(samples, 50), 50);
    assert.equal(percentile(samples, 99), 99);
    assert.equal(percentile(samples, 100), 100);
    assert.equal(percentile(samples, 0), 1);
    assert.equal(percentile([7], 99), 7);
    assert.ok(Number.isNaN(percentile([], 50)));
    assert.throws(() => percentile(samples, 101), /0\.\.100/);
    assert.deepEqual(summarize([3, 1, 2, 10]), { count: 4, p50: 2, p99: 10, max: 10 });
    assert.equal(median([5, 1, 3, 2]), 2.5);
  });

  it('reads CPU seconds from /proc/<pid>/stat even when the command name holds spaces and parentheses', () => {
    // pid (comm) state, then fields 4..13, utime (14) = 250 ticks, stime (15) = 50 ticks.
    const stat = '4242 (node (load) x) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 12 0 999 1000 2000';
    assert.equal(cpuSecondsFromStat(stat), 3);
    assert.throws(() => cpuSecondsFromStat('4242 (x) S 1'), /format/);
    assert.equal(cores(3, 2), 1.5);
  });

  it("reads a thread's run-queue wait from its schedstat (nanoseconds running, waiting, timeslices)", () => {
    assert.equal(waitSecondsFromSchedstat('8125013441 2500000000 91737\n'), 2.5);
    assert.throws(() => waitSecondsFromSchedstat('8125013441\n'), /format/);
    // Where the kernel keeps it, the test's own main thread has a readable one.
    assert.ok(waitSecondsFromSchedstat(readFileSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, 'utf8')) >= 0);
  });

  it('reads VmRSS and VmHWM in bytes', () => {
    const status = 'Name:\tnode\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n';
    assert.equal(statusBytes(status, 'VmRSS'), 100 * 1024 * 1024);
    assert.equal(statusBytes(status, 'VmHWM'), 200 * 1024 * 1024);
    assert.throws(() => statusBytes('Name: x\n', 'VmRSS'), /VmRSS/);
  });

  it('orients the ratio so that more than 1 always means Roster did better', () => {
    assert.equal(advantage(20_000, 10_000, 'higher'), 2); // twice the throughput
    assert.equal(advantage(5_000, 10_000, 'higher'), 0.5);
    assert.equal(advantage(10, 20, 'lower'), 2); // half the latency
    assert.equal(advantage(40, 20, 'lower'), 0.5); // twice the memory
    assert.equal(advantage(0, 20, 'lower'), undefined);
    assert.equal(advantage(10, Number.NaN, 'higher'), undefined);
  });

  it('judges targets on the oriented ratio or on Roster’s own number', () => {
    const twice = { minAdvantage: 2, text: '≥ 2×' };
    assert.equal(targetMet(twice, 20_000, advantage(20_000, 10_000, 'higher')), true);
    assert.equal(targetMet(twice, 19_000, advantage(19_000, 10_000, 'higher')), false);
    assert.equal(targetMet(twice, 19_000, undefined), undefined);
    const atMost = { rosterAtMost: 20, text: '≤ 20 ms' };
    assert.equal(targetMet(atMost, 19.9, undefined), true);
    assert.equal(targetMet(atMost, 20.1, undefined), false);
    assert.equal(targetMet(undefined, 1, 1), undefined);
  });

  it('computes the end of an etcd prefix range', () => {
    assert.deepEqual(prefixEnd(Buffer.from('/registry/')), Buffer.from('/registry0'));
    assert.deepEqual(prefixEnd(Buffer.from([0x61, 0xff])), Buffer.from([0x62]));
    assert.deepEqual(prefixEnd(Buffer.from([0xff, 0xff])), Buffer.from([0]));
  });

  it('prints a Markdown table with the ratio and both sides’ cores', () => {
    const row: CompareRow = {
      id: 'register-1p',
      shape: 'register',
      title: 'register, 64 callers, 1 load process',
      unit: 'writes/s',
      better: 'higher',
      roster: 12_000,
      etcd: 6_000,
      advantage: 2,
      serverCores: { roster: 0.9, etcd: 0.8 },
      loadCores: { roster: 1, etcd: 0.7 },
      target: { minAdvantage: 2, text: '≥ 2×' },
      met: true,
      note: '',
      details: {},
    };
    const lines = compareTable([row]).split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /^\| shape .*Roster\/etcd/);
    assert.match(lines[2]!, /\| 12,000 +\| 6,000 +\| writes\/s +\| 2\.00× +\| 0\.90 \\\| 0\.80 +\| 1\.00 \\\| 0\.70 +\| ≥ 2× +\| yes +\| - +\|$/);
  });

  it('says etcd is missing rather than failing later, and refuses unknown shapes before starting anything', async () => {
    assert.equal(etcdVersion('/nonexistent/etcd'), undefined);
    const errors: string[] = [];
    const original = console.error;
    console.error = (message: string) => errors.push(message);
    try {
      assert.equal(await runCompareEtcd({ quick: true, only: ['register', 'nope'] }), 2);
    } finally {
      console.error = original;
    }
    assert.match(errors.join('\n'), /unknown shape\(s\) nope; shapes are register, renewals, heartbeat, watch, size, cluster/);
  });
});
