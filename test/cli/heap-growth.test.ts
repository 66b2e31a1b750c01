import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { GROWTH_BUDGET_BYTES, HeapGrowth, MAX_HEAP_GROWING_PERCENT, MIN_HEAP_GROWING_PERCENT, RELAX_BELOW_BYTES, TIGHTEN_AT_BYTES, type HeapGrowthOptions } from '../../src/cli/heap-growth.js';

const MiB = 1024 * 1024;

/** A policy told of major GCs by the test, on a heap whose size the test sets; the flags it applied and its log lines. */
function setup(options: Partial<HeapGrowthOptions> = {}) {
  const heap = { used: 10 * MiB };
  const flags: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const gc = { listener: undefined as (() => void) | undefined, subscriptions: 0 };
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const onMajorGc = (listener: () => void): (() => void) => {
    gc.listener = listener;
    gc.subscriptions++;
    return () => void (gc.listener = undefined);
  };
  const policy = new HeapGrowth({ logger, usedHeapBytes: () => heap.used, onMajorGc, setFlag: (f) => void flags.push(f), execArgv: [], ...options });
  /** A major GC after which `mib` MiB survived. */
  const majorGc = (mib: number): void => {
    heap.used = mib * MiB;
    gc.listener?.();
  };
  return { heap, flags, lines, gc, policy, majorGc };
}

const percentFor = (mib: number): number => Math.floor((100 * GROWTH_BUDGET_BYTES) / (mib * MiB));

describe('HeapGrowth', () => {
  it("keeps V8's default growth while little survives a major GC", () => {
    const { flags, policy, majorGc } = setup();
    policy.start();
    for (const mib of [RELAX_BELOW_BYTES / MiB, TIGHTEN_AT_BYTES / MiB - 1]) majorGc(mib);
    assert.deepEqual(flags, []);
    assert.equal(policy.tight, false);
  });

  it('bounds the growth to the budget once the heap is large: budget ÷ what survived, within the bounds', () => {
    const { flags, lines, policy, majorGc } = setup();
    policy.start();
    majorGc(TIGHTEN_AT_BYTES / MiB);
    // Just past the mark the whole budget is the growth (250 % of 16 MiB), within V8's 4×.
    assert.deepEqual(flags, [`--heap-growing-percent=${percentFor(TIGHTEN_AT_BYTES / MiB)}`]);
    assert.ok(percentFor(TIGHTEN_AT_BYTES / MiB) <= MAX_HEAP_GROWING_PERCENT);
    assert.equal(policy.tight, true);
    for (const mib of [64, 128, 256]) {
      majorGc(mib);
      assert.equal(policy.percent, percentFor(mib));
      assert.equal(flags.at(-1), `--heap-growing-percent=${percentFor(mib)}`);
    }
    majorGc(4000);
    assert.equal(policy.percent, MIN_HEAP_GROWING_PERCENT);
    // The same percent again is not applied again.
    const applied = flags.length;
    majorGc(4100);
    assert.equal(flags.length, applied);
    // One info line for the switch; the adjustments are debug lines.
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.msg, 'heap growth bounded: the heap is large');
    assert.equal(lines[0]!.component, 'heap');
    assert.equal(lines[0]!.heapUsedMiB, TIGHTEN_AT_BYTES / MiB);
    assert.equal(lines[0]!.heapGrowingPercent, percentFor(TIGHTEN_AT_BYTES / MiB));
  });

  it('goes back to the default only below the lower mark (hysteresis), then bounds again', () => {
    const { flags, lines, policy, majorGc } = setup();
    policy.start();
    majorGc(300);
    // Between the marks the growth stays bounded.
    majorGc((TIGHTEN_AT_BYTES + RELAX_BELOW_BYTES) / 2 / MiB);
    assert.equal(policy.tight, true);
    assert.equal(flags.at(-1), `--heap-growing-percent=${MAX_HEAP_GROWING_PERCENT}`);
    majorGc(RELAX_BELOW_BYTES / MiB - 1);
    assert.equal(flags.at(-1), '--heap-growing-percent=0');
    assert.equal(policy.tight, false);
    assert.equal(lines.at(-1)!.msg, "heap growth back to V8's default: the heap is small");
    assert.equal(lines.at(-1)!.heapGrowingPercent, 0);
    const applied = flags.length;
    majorGc(TIGHTEN_AT_BYTES / MiB - 1);
    assert.equal(flags.length, applied);
    majorGc(256);
    assert.equal(flags.at(-1), `--heap-growing-percent=${percentFor(256)}`);
  });

  it('stop() stops following major GCs and restores the default without a log line', () => {
    const { flags, lines, gc, policy, majorGc } = setup();
    policy.start();
    policy.start();
    assert.equal(gc.subscriptions, 1);
    majorGc(300);
    policy.stop();
    assert.deepEqual(flags.slice(1), ['--heap-growing-percent=0']);
    assert.equal(policy.tight, false);
    assert.equal(lines.length, 1);
    assert.equal(gc.listener, undefined);
  });

  it('leaves the growth alone when node was started with --heap-growing-percent', () => {
    for (const arg of ['--heap-growing-percent=20', '--heap_growing_percent=80']) {
      const { flags, gc, policy, majorGc } = setup({ execArgv: ['--import', 'x.js', arg] });
      policy.start();
      majorGc(900);
      policy.stop();
      assert.deepEqual(flags, []);
      assert.equal(gc.subscriptions, 0);
    }
  });

  it('follows real major GCs by default', async () => {
    let majors = 0;
    const policy = new HeapGrowth({
      usedHeapBytes: () => {
        majors++;
        return 1;
      },
      setFlag: () => undefined,
      execArgv: [],
    });
    policy.start();
    try {
      // A full GC without starting node with --expose-gc: the flag exposes `gc` to contexts made after it.
      setFlagsFromString('--expose-gc');
      (runInNewContext('gc') as () => void)();
      for (let i = 0; i < 100 && majors === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.ok(majors > 0);
    } finally {
      policy.stop();
    }
  });
});
