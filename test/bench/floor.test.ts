import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runFloor } from '../../bench/floor.js';

describe('npm run bench -- --floor', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'roster-floor-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('replays Heartbeat and Register at Roster and at bare node:http2, grpc-js and Roster-HTTP/2 servers, every call answered OK', async () => {
    const out = join(dir, 'floor.json');
    await runFloor({ quick: true, out });
    const report = JSON.parse(readFileSync(out, 'utf8')) as { rows: { server: string; method: string; callsPerSecond: number; serverMicrosPerCall: number; failed: number }[] };
    assert.deepEqual(
      report.rows.map((r) => `${r.method} ${r.server}`),
      ['Heartbeat roster', 'Heartbeat http2', 'Heartbeat grpc-js', 'Heartbeat roster-http2', 'Register roster', 'Register http2', 'Register grpc-js', 'Register roster-http2'],
    );
    for (const row of report.rows) {
      assert.equal(row.failed, 0, `${row.method} ${row.server}`);
      assert.ok(row.callsPerSecond > 0 && row.serverMicrosPerCall > 0, `${row.method} ${row.server}: ${JSON.stringify(row)}`);
    }
  });
});
