// Preloaded into a Roster node by bench/scale.ts (`node --import ./bench/scale-probe.js
// bin/roster.js serve ...`) so the node under test runs exactly as deployed while the bench reads
// what only the server process can see: its event-loop delay histogram and its GC pauses.
// Plain JavaScript on purpose: the node must not load tsx because of the probe.
//
// IPC, with the bench as parent (fork):
//   ← {type: 'scale-probe', id, reset}  → {type: 'scale-probe', id, eventLoop, gc, longPauses, stalls, memory, heap, serverMs}
// `reset` starts a new measuring window after the answer. The node is sent SIGTERM when the
// bench goes away, so a crashed bench leaves no server behind.
import { PerformanceObserver, constants, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

/**
 * 1 ms sampling. The histogram records the time between two ticks of its timer, so its maximum
 * overstates the longest stall by up to the resolution: at 10 ms a 91 ms stall and a 101 ms one
 * read alike against the 100 ms bound. A 1 ms timer in C++ costs nothing measurable.
 */
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();

const GC_KINDS = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak-callbacks',
};
/** GC pauses of this window by kind: count, total and longest (ms), and every pause over 100 ms. */
let gc = {};
let longPauses = [];
/** This window's GC pauses of 5 ms or more (start and duration, ms): what a stall is made of. */
let pauses = [];
const observer = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = GC_KINDS[entry.detail?.kind] ?? `kind-${entry.detail?.kind}`;
    const stats = (gc[kind] ??= { count: 0, totalMs: 0, maxMs: 0 });
    stats.count++;
    stats.totalMs += entry.duration;
    stats.maxMs = Math.max(stats.maxMs, entry.duration);
    if (entry.duration > 100 && longPauses.length < 100) longPauses.push({ kind, ms: Math.round(entry.duration), at: Math.round(entry.startTime) });
    if (entry.duration >= 5 && pauses.length < 20_000) pauses.push({ kind, start: entry.startTime, ms: entry.duration });
  }
});
observer.observe({ entryTypes: ['gc'] });

/**
 * Turns of the event loop that kept a 10 ms timer waiting over 100 ms (the bound the bench
 * checks): when they ended and how late the timer was. Told apart at answer time, once the
 * GC entries have arrived: the GC pauses inside a stall, and the rest (JavaScript, or the
 * process not scheduled on a busy machine).
 */
const STALL_MS = 100;
let stalls = [];
let lastTick = performance.now();
setInterval(() => {
  const now = performance.now();
  const late = now - lastTick - 10;
  if (late > STALL_MS && stalls.length < 100) stalls.push({ from: lastTick + 10, to: now });
  lastTick = now;
}, 10).unref();

function describeStalls() {
  return stalls.map(({ from, to }) => {
    const inside = pauses.filter((p) => p.start < to && p.start + p.ms > from);
    const gcMs = inside.reduce((sum, p) => sum + Math.min(to, p.start + p.ms) - Math.max(from, p.start), 0);
    return { at: Math.round(to), ms: Math.round(to - from), gcMs: Math.round(gcMs), gc: inside.map((p) => `${p.kind} ${Math.round(p.ms)}`) };
  });
}

const ms = (ns) => Math.round(ns / 1e4) / 100;

process.on('message', (message) => {
  if (message?.type !== 'scale-probe') return;
  process.send?.({
    type: 'scale-probe',
    id: message.id,
    eventLoop: { p50Ms: ms(delay.percentile(50)), p99Ms: ms(delay.percentile(99)), maxMs: ms(delay.max), meanMs: ms(delay.mean), samples: delay.count },
    gc,
    longPauses,
    stalls: describeStalls(),
    memory: process.memoryUsage(),
    heap: getHeapStatistics(),
    serverMs: performance.now(),
  });
  if (message.reset) {
    delay.reset();
    gc = {};
    longPauses = [];
    pauses = [];
    stalls = [];
  }
});
process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
