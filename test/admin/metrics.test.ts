import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { pino } from 'pino';
import { RosterClient } from '../../src/client/index.js';
import { resolveConfig } from '../../src/cli/config.js';
import { startNode } from '../../src/cli/node.js';

// Debian's interpreter, which sees python3-prometheus-client (.ci/apt-packages).
const PYTHON = '/usr/bin/python3';
const INSTALL_HINT = 'apt-get install -y python3-prometheus-client (listed in .ci/apt-packages)';

/** The official Prometheus text-format parser, turning an exposition into families as JSON. */
const PARSER = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]})
print(json.dumps(out))
`;

interface Family {
  name: string;
  type: string;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

async function parseExposition(text: string): Promise<Family[]> {
  const child = spawn(PYTHON, ['-c', PARSER], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(text);
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  assert.equal(code, 0, `the Prometheus parser refused the exposition (${INSTALL_HINT} if missing): ${stderr}`);
  return JSON.parse(stdout) as Family[];
}

/** The node's own families and their types; faces may add more, which the convention checks cover too. */
const EXPECTED: Record<string, string> = {
  roster_build_info: 'gauge',
  roster_instances: 'gauge',
  roster_registry_revision: 'gauge',
  roster_renewals_last_minute: 'gauge',
  roster_expected_renewals_last_minute: 'gauge',
  roster_lapsed_instances: 'gauge',
  roster_self_preservation_active: 'gauge',
  roster_evictions: 'counter',
  roster_rpc_requests: 'counter',
  roster_rpc_open_streams: 'gauge',
  roster_rpc_duration_seconds: 'histogram',
  roster_peer_connected: 'gauge',
  roster_peer_queued_tasks: 'gauge',
  roster_peer_in_flight_tasks: 'gauge',
  roster_peer_batches_sent: 'counter',
  roster_peer_tasks_sent: 'counter',
  roster_peer_tasks_dropped: 'counter',
  roster_peer_tasks_expired: 'counter',
  roster_peer_tasks_poisoned: 'counter',
  roster_peer_reconnects: 'counter',
  roster_peer_conflicts: 'counter',
  roster_replication_ready: 'gauge',
  roster_replication_lag_seconds: 'histogram',
};

test('/metrics follows the Prometheus conventions, checked with the official text-format parser', async () => {
  const config = resolveConfig({ flags: { port: 0, httpPort: 0, peers: '127.0.0.1:1', clusterToken: 'metrics-test-token', startupWaitSecs: 0, nodeId: 'metrics-test' } });
  const node = await startNode(config, pino({ level: 'silent' }));
  const client = new RosterClient(`127.0.0.1:${node.grpcPort}`);
  const abort = new AbortController();
  try {
    await client.register({ app: 'billing', instanceId: 'i-1' });
    // One open watcher and one open heartbeat stream.
    const watch = client.watch({ app: 'billing' }, { signal: abort.signal })[Symbol.asyncIterator]();
    await watch.next();
    const heartbeats = client.openHeartbeats();
    heartbeats.on('error', () => undefined);
    heartbeats.write({ batchId: 1, heartbeats: [{ app: 'billing', instanceId: 'i-1', lastDirtyTimestamp: 0 }] });
    await new Promise((resolve) => heartbeats.once('data', resolve));

    const res = await fetch(`http://127.0.0.1:${node.httpPort}/metrics`, { signal: AbortSignal.timeout(10_000) });
    const families = await parseExposition(await res.text());
    const byName = new Map(families.map((f) => [f.name, f]));

    for (const [name, type] of Object.entries(EXPECTED)) assert.equal(byName.get(name)?.type, type, `${name} is a ${type}`);
    for (const f of families.filter((f) => f.name.startsWith('roster_'))) {
      const values = f.samples.filter((s) => !s.name.endsWith('_created'));
      if (f.type === 'counter') {
        for (const s of values) assert.ok(s.name.endsWith('_total'), `counter sample ${s.name} ends in _total`);
      } else {
        assert.ok(!f.name.endsWith('_total'), `${f.name}: only counters end in _total`);
      }
      assert.doesNotMatch(f.name, /per_minute|_ms$|_millis/, `${f.name}: base units (seconds) or an explicit window in the name`);
    }
    // No two series saying the same thing: the registry size is the sum of roster_instances.
    assert.equal(byName.get('roster_registry_size'), undefined);

    const build = byName.get('roster_build_info')!.samples;
    const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    assert.deepEqual(
      build.map((s) => [s.labels.version, s.labels.nodejs, s.value]),
      [[version, process.version, 1]],
    );

    const open = Object.fromEntries(byName.get('roster_rpc_open_streams')!.samples.map((s) => [s.labels.method, s.value]));
    assert.equal(open['/roster.v1.RegistryService/Watch'], 1, 'one watcher');
    assert.equal(open['/roster.v1.RegistryService/Heartbeats'], 1, 'one heartbeat stream');
    const peer = byName.get('roster_peer_reconnects')!.samples.find((s) => s.labels.peer === '127.0.0.1:1');
    assert.equal(peer?.value, 0, 'a peer that never answered was never reconnected');
    heartbeats.end();
    abort.abort();
  } finally {
    abort.abort();
    client.close();
    await node.stop();
  }
});
