import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { AgentConfigError, describeAgentSettings, loadAgentConfig } from '../../src/agent/config.js';
import { parseProbe, runProbe } from '../../src/agent/probes.js';
import { HealthThresholds } from '../../src/agent/thresholds.js';

test('thresholds: N failures make it unhealthy, M successes healthy again, each change reported once', () => {
  const t = new HealthThresholds(3, 2);
  assert.equal(t.health, 'starting');
  assert.equal(t.record(true), undefined);
  assert.equal(t.record(true), 'healthy');
  assert.equal(t.record(false), undefined);
  assert.equal(t.record(false), undefined);
  assert.equal(t.record(true), undefined, 'a success resets the failure count');
  assert.deepEqual(
    [false, false, false].map((ok) => t.record(ok)),
    [undefined, undefined, 'unhealthy'],
  );
  assert.equal(t.record(false), undefined, 'no repeat while it stays unhealthy');
  assert.deepEqual(
    [true, true].map((ok) => t.record(ok)),
    [undefined, 'healthy'],
  );
  const fast = new HealthThresholds(1, 1);
  assert.equal(fast.record(false), 'unhealthy', 'a starting app that fails is unhealthy at the threshold');
});

test('probe specs: each kind parsed, bad ones named', () => {
  assert.deepEqual(parseProbe('http://127.0.0.1:80/health', '204'), { kind: 'http', url: 'http://127.0.0.1/health', expect: { min: 204, max: 204 } });
  assert.deepEqual(parseProbe('grpc://localhost:9000/echo.Echo'), { kind: 'grpc', address: 'localhost:9000', service: 'echo.Echo' });
  assert.deepEqual(parseProbe('grpc://localhost:9000'), { kind: 'grpc', address: 'localhost:9000', service: '' });
  assert.deepEqual(parseProbe('tcp://[::1]:5432'), { kind: 'tcp', host: '::1', port: 5432 });
  assert.deepEqual(parseProbe('exec:test -f /tmp/ready'), { kind: 'exec', command: 'test -f /tmp/ready' });
  assert.deepEqual(parseProbe(''), { kind: 'none' });
  assert.throws(() => parseProbe('ftp://x:1'), /unknown scheme ftp:/);
  assert.throws(() => parseProbe('tcp://host'), /needs host:port/);
  assert.throws(() => parseProbe('exec:'), /needs a command/);
  assert.throws(() => parseProbe('http://x:1/', '99'), /expected status "99"/);
  assert.throws(() => parseProbe('nonsense'), /must be http/);
});

let http: Server;
let httpStatus = 200;
let grpcServer: grpc.Server;
let health: HealthImplementation;
let grpcPort = 0;
let tcpPort = 0;
const tcp = createTcpServer((s) => s.destroy());

before(async () => {
  http = createServer((_req, res) => res.writeHead(httpStatus).end());
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  health = new HealthImplementation({ '': 'SERVING', 'echo.Echo': 'NOT_SERVING' });
  grpcServer = new grpc.Server();
  health.addToServer(grpcServer);
  grpcPort = await new Promise<number>((resolve, reject) => grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  tcpPort = (tcp.address() as AddressInfo).port;
});

after(async () => {
  grpcServer.forceShutdown();
  await new Promise((resolve) => http.close(resolve));
  await new Promise((resolve) => tcp.close(resolve));
});

test('probes against real servers: HTTP status ranges, gRPC health, TCP, commands, timeouts', async () => {
  const httpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}/health`;
  assert.equal((await runProbe(parseProbe(httpUrl), 1_000)).ok, true);
  httpStatus = 503;
  assert.deepEqual(await runProbe(parseProbe(httpUrl), 1_000), { ok: false, detail: 'HTTP 503' });
  assert.equal((await runProbe(parseProbe(httpUrl, '500-503'), 1_000)).ok, true, 'the expected status is configurable');
  httpStatus = 200;

  assert.deepEqual(await runProbe(parseProbe(`grpc://127.0.0.1:${grpcPort}`), 1_000), { ok: true, detail: 'gRPC health SERVING' });
  assert.deepEqual(await runProbe(parseProbe(`grpc://127.0.0.1:${grpcPort}/echo.Echo`), 1_000), { ok: false, detail: 'gRPC health NOT_SERVING' });
  health.setStatus('echo.Echo', 'SERVING');
  assert.equal((await runProbe(parseProbe(`grpc://127.0.0.1:${grpcPort}/echo.Echo`), 1_000)).ok, true);
  assert.match((await runProbe(parseProbe(`grpc://127.0.0.1:${grpcPort}/unknown`), 1_000)).detail, /^gRPC 5:/, 'an unknown service is NOT_FOUND');

  assert.equal((await runProbe(parseProbe(`tcp://127.0.0.1:${tcpPort}`), 1_000)).ok, true);
  const closed = createTcpServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const closedPort = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  assert.match((await runProbe(parseProbe(`tcp://127.0.0.1:${closedPort}`), 1_000)).detail, /ECONNREFUSED/);

  assert.equal((await runProbe(parseProbe('exec:true'), 1_000)).ok, true);
  assert.deepEqual(await runProbe(parseProbe('exec:exit 3'), 1_000), { ok: false, detail: 'exec exit 3' });
  const started = performance.now();
  assert.deepEqual(await runProbe(parseProbe('exec:sleep 5'), 200), { ok: false, detail: 'exec timed out after 200 ms' });
  assert.ok(performance.now() - started < 2_000, 'the command was killed at its timeout');
});

test('agent config: flags over env over file, several apps from a file, every problem at once', () => {
  const dir = mkdtempSync(join(tmpdir(), 'roster-agent-'));
  const file = join(dir, 'agent.json');
  writeFileSync(
    file,
    JSON.stringify({
      drainSecs: 5,
      httpPort: 9000,
      apps: [
        { app: 'web', port: 8080, probe: 'http://127.0.0.1:8080/health', ip: '10.0.0.1' },
        { app: 'worker', instanceId: 'w-1', probe: 'exec:true', failureThreshold: 2 },
      ],
    }),
  );
  const config = loadAgentConfig({ config: file, drainSecs: '7' }, { ROSTER_AGENT_DRAIN_SECS: '6', ROSTER_AGENT_HTTP_PORT: '9100', ROSTER_SERVER: 'a:1,b:2' });
  assert.equal(config.drainSecs, 7, 'flag');
  assert.equal(config.httpPort, 9100, 'env over file');
  assert.deepEqual(config.servers, ['a:1', 'b:2']);
  assert.deepEqual(
    config.apps.map((a) => [a.app, a.instanceId.endsWith(':web:8080') ? 'default id' : a.instanceId, a.probe.kind, a.failureThreshold]),
    [
      ['web', 'default id', 'http', 3],
      ['worker', 'w-1', 'exec', 2],
    ],
  );

  const oneApp = loadAgentConfig({ app: 'api', port: '9000', probe: 'tcp://127.0.0.1:9000', metadata: 'version=2,team=core' }, {});
  assert.deepEqual(oneApp.apps[0]?.metadata, { version: '2', team: 'core' });
  assert.equal(oneApp.apps[0]?.probe.kind, 'tcp');

  assert.throws(() => loadAgentConfig({}, {}), /no application/);
  assert.throws(
    () => loadAgentConfig({ app: 'api', port: '70000', probe: 'ftp://x:1', server: 'nope' }, {}),
    (err: unknown) => err instanceof AgentConfigError && /port="70000" \(from flag --port\)/.test(err.message) && /probe="ftp:\/\/x:1"/.test(err.message) && /server="nope"/.test(err.message),
  );
  writeFileSync(file, JSON.stringify({ colour: 'red', apps: [{ app: 'x', typo: 1 }] }));
  assert.throws(() => loadAgentConfig({ config: file }, {}), /unknown key "colour".*unknown key "apps\[0\]\.typo"/);
});

test('every agent setting has a flag and an env var, none twice', () => {
  const rows = describeAgentSettings();
  assert.equal(new Set(rows.map((r) => r.flag)).size, rows.length);
  assert.equal(new Set(rows.map((r) => r.envVar)).size, rows.length);
  for (const r of rows) assert.match(r.envVar, /^ROSTER_[A-Z_]+$/);
});
