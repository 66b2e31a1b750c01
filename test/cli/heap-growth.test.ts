import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { FakeClock } from '../../src/core/clock.js';
import { HEAP_CHECK_INTERVAL_MS, HeapGrowth, RELAX_BELOW_BYTES, TIGHTEN_AT_BYTES, TIGHT_HEAP_GROWING_PERCENT, type HeapGrowthOptions } from '../../src/cli/heap-growth.js';

const MiB = 1024 * 1024;

/** A policy on a fake clock and a heap whose size the test sets; the flags it applied and its log lines. */
function setup(options: Partial<HeapGrowthOptions> = {}) {
  const clock = new FakeClock();
  const heap = { used: 10 * MiB };
  const flags: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const policy = new HeapGrowth({ clock, logger, usedHeapBytes: () => heap.used, setFlag: (f) => void flags.push(f), execArgv: [], ...options });
  const tick = (): void => clock.advance(HEAP_CHECK_INTERVAL_MS);
  return { clock, heap, flags, lines, policy, tick };
}

describe('HeapGrowth', () => {
  it('keeps V8 default growth while the heap is small', () => {
    const { heap, flags, policy, tick } = setup();
    policy.start();
    for (const used of [10, 100, 255]) {
      heap.used = used * MiB;
      tick();
    }
    assert.deepEqual(flags, []);
    assert.equal(policy.tight, false);
  });

  it('tightens once the heap is large, logging one line with fields, and only once', () => {
    const { heap, flags, lines, policy, tick } = setup();
    policy.start();
    heap.used = TIGHTEN_AT_BYTES;
    tick();
    heap.used = 600 * MiB;
    tick();
    tick();
    assert.deepEqual(flags, [`--heap-growing-percent=${TIGHT_HEAP_GROWING_PERCENT}`]);
    assert.equal(policy.tight, true);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.msg, 'heap growth tightened: the heap is large');
    assert.equal(lines[0]!.component, 'heap');
    assert.equal(lines[0]!.heapUsedMiB, 256);
    assert.equal(lines[0]!.heapGrowingPercent, TIGHT_HEAP_GROWING_PERCENT);
  });

  it('goes back to the default only below the lower mark (hysteresis), then tightens again', () => {
    const { heap, flags, lines, policy, tick } = setup();
    policy.start();
    heap.used = 300 * MiB;
    tick();
    // Between the marks: whichever way the heap moves, the setting stays.
    for (const used of [200, 65, 128, 250]) {
      heap.used = used * MiB;
      tick();
    }
    assert.equal(flags.length, 1);
    heap.used = RELAX_BELOW_BYTES - 1;
    tick();
    assert.deepEqual(flags.slice(1), ['--heap-growing-percent=0']);
    assert.equal(lines[1]!.msg, "heap growth back to V8's default: the heap is small");
    assert.equal(lines[1]!.heapGrowingPercent, 0);
    for (const used of [65, 200, 255]) {
      heap.used = used * MiB;
      tick();
    }
    assert.equal(flags.length, 2);
    heap.used = 400 * MiB;
    tick();
    assert.equal(flags.at(-1), `--heap-growing-percent=${TIGHT_HEAP_GROWING_PERCENT}`);
  });

  it('checks on its interval only, and stop() ends the checks and restores the default without a log line', () => {
    const { clock, heap, flags, lines, policy, tick } = setup();
    policy.start();
    heap.used = 300 * MiB;
    clock.advance(HEAP_CHECK_INTERVAL_MS - 1);
    assert.deepEqual(flags, []);
    clock.advance(1);
    assert.equal(flags.length, 1);
    policy.stop();
    assert.deepEqual(flags.slice(1), ['--heap-growing-percent=0']);
    assert.equal(policy.tight, false);
    assert.equal(lines.length, 1);
    assert.equal(clock.pendingTimers, 0);
    tick();
    assert.equal(flags.length, 2);
  });

  it('leaves the growth alone when node was started with --heap-growing-percent', () => {
    for (const arg of ['--heap-growing-percent=20', '--heap_growing_percent=80']) {
      const { clock, heap, flags, policy, tick } = setup({ execArgv: ['--import', 'x.js', arg] });
      policy.start();
      heap.used = 900 * MiB;
      tick();
      policy.stop();
      assert.deepEqual(flags, []);
      assert.equal(clock.pendingTimers, 0);
    }
  });
});
