import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { killAll, run, start, type Running } from './process.js';

let server: Running;
let address: string;
let admin: string;

before(async () => {
  server = start(['serve', '--port', '0', '--http-port', '0', '--node-id', 'cli-test']);
  const started = JSON.parse(await server.line((l) => l.includes('"roster started"'))) as Record<string, unknown>;
  assert.equal(started.nodeId, 'cli-test');
  assert.equal(typeof started.httpPort, 'number');
  address = `127.0.0.1:${started.grpcPort as number}`;
  admin = `127.0.0.1:${started.httpPort as number}`;
});

after(killAll);

test('register, apps, get, status, watch and SIGTERM against a real server', async () => {
  // biome-ignore format: a flag and its value per line
  const agent = start([
    'register',
    '--server', address,
    '--json',
    '--app', 'Cli-App',
    '--id', 'c-1',
    '--ip', '10.1.2.3',
    '--port', '8080',
    '--metadata', 'team=core',
    '--metadata', 'tier=1',
    '--vip', 'cli-vip',
    '--renew-secs', '5',
  ]);
  const registered = JSON.parse(await agent.line(() => true)) as Record<string, unknown>;
  assert.equal(registered.app, 'cli-app');
  assert.equal(registered.status, 'INSTANCE_STATUS_UP');

  const apps = await run(['apps', '--server', address, '--json']);
  assert.equal(apps.code, 0, apps.stderr);
  const snapshot = JSON.parse(apps.stdout) as { revision: number; instances: Record<string, unknown>[] };
  assert.ok(snapshot.revision > 0);
  const mine = snapshot.instances.find((i) => i.instanceId === 'c-1');
  assert.deepEqual(mine?.metadata, { team: 'core', tier: '1' });
  assert.equal(mine?.vipAddress, 'cli-vip');

  const human = await run(['apps'], { ROSTER_SERVER: address });
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^APP\s+INSTANCES\s+STATUS$/m);
  assert.match(human.stdout, /^cli-app\s+1\s+UP 1$/m);
  assert.match(human.stdout, /^revision \d+, 1 instances$/m);

  const table = await run(['get', 'cli-app', '--server', address]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^c-1\s+UP\s+-\s+10\.1\.2\.3:8080\s/m);
  const one = await run(['get', 'cli-app', 'c-1', '--server', address, '--json']);
  assert.equal((JSON.parse(one.stdout) as { instance: { ipAddr: string } }).instance.ipAddr, '10.1.2.3');
  const details = await run(['get', 'cli-app', 'c-1', '--server', address]);
  assert.match(details.stdout, /^metadata team\s+core$/m);
  const none = await run(['get', 'no-such-app', '--server', address]);
  assert.equal(none.code, 3, 'an unknown application is not success');
  assert.equal(none.stderr, 'roster: not found: application no-such-app has no instances\n');

  const watch = start(['watch', 'cli-app', '--server', address, '--json', '--since', String(snapshot.revision)]);
  const over = await run(['status', 'cli-app', 'c-1', 'out_of_service', '--server', address]);
  assert.equal(over.code, 0, over.stderr);
  assert.equal(over.stdout, 'cli-app/c-1: override OUT_OF_SERVICE, status OUT_OF_SERVICE\n');
  const event = JSON.parse(await watch.line((l) => l.includes('"changes"'))) as {
    changes: { type: string; instance: { instanceId: string; status: string } }[];
  };
  assert.equal(event.changes[0]?.type, 'CHANGE_TYPE_MODIFIED');
  assert.equal(event.changes[0]?.instance.status, 'INSTANCE_STATUS_OUT_OF_SERVICE');
  watch.child.kill('SIGTERM');
  assert.equal(await watch.exit(), 0, watch.stderr());

  const cleared = await run(['status', 'cli-app', 'c-1', '--clear', '--server', address]);
  assert.equal(cleared.code, 0, cleared.stderr);
  assert.match(cleared.stdout, /override cleared/);

  agent.child.kill('SIGTERM');
  assert.equal(await agent.exit(), 0, agent.stderr());
  const gone = await run(['get', 'cli-app', 'c-1', '--server', address]);
  assert.equal(gone.code, 3);
  assert.match(gone.stderr, /^roster: not found: .*c-1/);
  assert.equal(gone.stderr.trim().split('\n').length, 1, 'one line');
});

test('peers: the replication state from the admin port, as a table and as JSON', async () => {
  // This node dials a peer that is not there: it shows as down with the error and reconnects.
  const lonely = start(['serve', '--port', '0', '--http-port', '0', '--node-id', 'lonely', '--peers', '127.0.0.1:1', '--startup-wait-secs', '0', '--insecure']);
  const started = JSON.parse(await lonely.line((l) => l.includes('"roster started"'))) as { httpPort: number };
  const json = await run(['peers', '--admin', `127.0.0.1:${started.httpPort}`, '--json']);
  assert.equal(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as { nodeId: string; peers: { peer: string; connected: boolean }[] };
  assert.equal(report.nodeId, 'lonely');
  assert.deepEqual(
    report.peers.map((p) => [p.peer, p.connected]),
    [['127.0.0.1:1', false]],
  );
  const table = await run(['peers'], { ROSTER_ADMIN: `127.0.0.1:${started.httpPort}` });
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^PEER\s+STATE\s+QUEUED/m);
  assert.match(table.stdout, /^127\.0\.0\.1:1\s+down\s/m);
  const alone = await run(['peers', '--admin', admin, '--json']);
  assert.deepEqual((JSON.parse(alone.stdout) as { peers: unknown[] }).peers, []);
  lonely.child.kill('SIGTERM');
  assert.equal(await lonely.exit(), 0, lonely.stderr());
});

test('usage and configuration errors exit 2 with one line on stderr', async () => {
  for (const args of [
    ['status', 'a', 'b', '--server', address],
    ['status', 'a', 'b', 'sideways', '--server', address],
    ['register', '--server', address],
    ['register', '--app', 'x', '--port', 'eighty', '--server', address],
    ['serve', '--port', '70000'],
    ['nonsense'],
  ]) {
    const r = await run(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.length > 0);
  }
  const bad = await run(['serve', '--port', '70000']);
  assert.equal(bad.stderr, 'roster: invalid configuration: port=70000 (from flag --port): must be an integer from 0 to 65535\n');
});

test('serve exits 0 on SIGTERM after a graceful stop', async () => {
  server.child.kill('SIGTERM');
  assert.equal(await server.exit(), 0, server.stderr());
  await server.line((l) => l.includes('"roster stopped"'), 2_000);
});
