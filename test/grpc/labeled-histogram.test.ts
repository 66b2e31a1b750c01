import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { LabeledHistogram } from '../../src/grpc/metrics.js';

/** An exposition's samples as sorted lines, each one's labels in name order (the order is free in the text format). */
function samples(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const match = /^(\w+)(?:\{(.*)\})? (.+)$/.exec(line);
      assert.ok(match, `not a sample line: ${line}`);
      const labels = (match[2] ?? '').split(',').filter(Boolean).sort().join(',');
      return `${match[1]}{${labels}} ${match[3]}`;
    })
    .sort();
}

test('LabeledHistogram exposes what a prom-client Histogram does for the same observations, and resets to zero', async () => {
  const bounds = [0.001, 0.01, 0.1, 1];
  const theirs = new Registry();
  const reference = new Histogram({ name: 'x_seconds', help: 'Durations.', labelNames: ['method'], buckets: bounds, registers: [theirs] });
  const ours = new Registry();
  const histogram = new LabeledHistogram({ name: 'x_seconds', help: 'Durations.', label: 'method', buckets: bounds, registers: [ours] });
  // On a bound, between bounds, above every bound, zero; two methods, one with a quoted name.
  const observations: Array<[string, number]> = [
    ['/a/B', 0],
    ['/a/B', 0.001],
    ['/a/B', 0.0010001],
    ['/a/B', 0.5],
    ['/a/B', 7],
    ['/c/"D"', 0.05],
    ['/c/"D"', 1],
  ];
  for (const [method, seconds] of observations) {
    reference.observe({ method }, seconds);
    histogram.series(method).observe(seconds);
  }
  assert.deepEqual(samples(await ours.metrics()), samples(await theirs.metrics()));
  assert.match(await ours.metrics(), /^# TYPE x_seconds histogram$/m);
  assert.match(await ours.metrics(), /^x_seconds_count\{method="\/a\/B"\} 5$/m);

  ours.resetMetrics();
  theirs.resetMetrics();
  for (const method of ['/a/B', '/c/"D"']) reference.zero({ method });
  assert.deepEqual(samples(await ours.metrics()), samples(await theirs.metrics()));
});
