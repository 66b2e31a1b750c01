import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { runAb } from '../../bench/ab.js';

const CHECKOUT = fileURLToPath(new URL('../../', import.meta.url));

describe('npm run bench -- --ab', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'roster-ab-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('registers on two nodes in alternating pairs of rounds and reports each pair ratio (here the checkout against itself)', async () => {
    const out = join(dir, 'ab.json');
    await runAb({ other: CHECKOUT, quick: true, out });
    type Side = { checkout: string; callsPerSecond: number; serverMicrosPerCall: number; rounds: unknown[] };
    const report = JSON.parse(readFileSync(out, 'utf8')) as { budget: { pairs: number }; A: Side; B: Side; bOverA: { callsPerSecond: { median: number; pairs: number[] } } };
    for (const side of [report.A, report.B]) {
      assert.equal(side.checkout, CHECKOUT);
      assert.equal(side.rounds.length, report.budget.pairs);
      assert.ok(side.callsPerSecond > 0 && side.serverMicrosPerCall > 0, JSON.stringify(side));
    }
    assert.equal(report.bOverA.callsPerSecond.pairs.length, report.budget.pairs);
    assert.ok(report.bOverA.callsPerSecond.median > 0);
  });
});
