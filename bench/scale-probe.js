// Preloaded into a Roster node by bench/scale.ts (`node --import ./bench/scale-probe.js
// bin/roster.js serve ...`) so the node under test runs exactly as deployed while the bench reads
// what only the server process can see: its event-loop delay histogram and its GC pauses.
// Plain JavaScript on purpose: the node must not load tsx because of the probe.
//
// IPC, with the bench as parent (fork):
//   ← {type: 'scale-probe', id, reset}  → {type: 'scale-probe', id, eventLoop, gc, memory, heap, serverMs}
// `reset` starts a new measuring window after the answer. The node is sent SIGTERM when the
// bench goes away, so a crashed bench leaves no server behind.
import { PerformanceObserver, constants, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

/** 10 ms sampling: fine enough for a 100 ms stall bound, cheap enough to leave on for minutes. */
const delay = monitorEventLoopDelay({ resolution: 10 });
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
const observer = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = GC_KINDS[entry.detail?.kind] ?? `kind-${entry.detail?.kind}`;
    const stats = (gc[kind] ??= { count: 0, totalMs: 0, maxMs: 0 });
    stats.count++;
    stats.totalMs += entry.duration;
    stats.maxMs = Math.max(stats.maxMs, entry.duration);
    if (entry.duration > 100 && longPauses.length < 100) longPauses.push({ kind, ms: Math.round(entry.duration), at: Math.round(entry.startTime) });
  }
});
observer.observe({ entryTypes: ['gc'] });

const ms = (ns) => Math.round(ns / 1e4) / 100;

process.on('message', (message) => {
  if (message?.type !== 'scale-probe') return;
  process.send?.({
    type: 'scale-probe',
    id: message.id,
    eventLoop: { p50Ms: ms(delay.percentile(50)), p99Ms: ms(delay.percentile(99)), maxMs: ms(delay.max), meanMs: ms(delay.mean), samples: delay.count },
    gc,
    longPauses,
    memory: process.memoryUsage(),
    heap: getHeapStatistics(),
    serverMs: performance.now(),
  });
  if (message.reset) {
    delay.reset();
    gc = {};
    longPauses = [];
  }
});
process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
