import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bootstrapConfig } from '../../src/xds/bootstrap.js';

const ROSTER = fileURLToPath(new URL('../../bin/roster.js', import.meta.url));

function roster(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [ROSTER, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('roster xds bootstrap', () => {
  test('carries xds_v3, ignore_resource_deletion, insecure creds and the locality grpc-js needs', () => {
    const b = bootstrapConfig({ servers: ['127.0.0.1:8761', 'dns:///roster.ns.svc:8761'], zone: 'z1', region: 'r1', nodeId: 'n1' });
    assert.deepEqual(
      b.xds_servers.map((s) => s.server_uri),
      ['127.0.0.1:8761', 'dns:///roster.ns.svc:8761'],
    );
    for (const s of b.xds_servers) {
      assert.deepEqual(s.channel_creds, [{ type: 'insecure' }]);
      assert.deepEqual(s.server_features, ['xds_v3', 'ignore_resource_deletion']);
    }
    assert.deepEqual(b.node, { id: 'n1', locality: { zone: 'z1', region: 'r1' } });
    assert.equal(bootstrapConfig({ servers: ['h:1'] }).node.locality.zone, 'default', 'a locality even without --zone');
  });

  test('refuses bad input naming the flag', () => {
    assert.throws(() => bootstrapConfig({ servers: [] }), /--server/);
    assert.throws(() => bootstrapConfig({ servers: ['no-port'] }), /--server: "no-port" needs a port/);
    assert.throws(() => bootstrapConfig({ servers: ['has space:1'] }), /--server/);
    assert.throws(() => bootstrapConfig({ servers: ['h:1'], zone: '' }), /--zone/);
  });

  test('the CLI prints the JSON and exits 0; bad usage exits 2 with one line on stderr', async () => {
    const ok = await roster(['xds', 'bootstrap', '--server', '127.0.0.1:8761', '--zone', 'z9', '--node-id', 'cli']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout).node, { id: 'cli', locality: { zone: 'z9' } });
    const bad = await roster(['xds', 'bootstrap', '--server', 'nope']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^roster: --server: "nope" needs a port/);
    const missing = await roster(['xds', 'bootstrap']);
    assert.equal(missing.code, 2);
  });
});
