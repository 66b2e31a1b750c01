import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { RosterClient } from '../../src/client/index.js';
import type { RosterNode } from '../../src/cli/node.js';
import { ChangeType, InstanceStatus, type Instance } from '../../src/gen/roster/v1/instance.js';
import { startTestNode, waitFor } from '../client/harness.js';
import { spawnRoster } from '../client/processes.js';
import { stopProcess } from '../support/nodes.js';

const PROBE_INTERVAL_MS = 1_000;
/** Time for the status write itself (one register call) after the probe that notices. */
const WRITE_ALLOWANCE_MS = 500;
const DRAIN_SECS = 1;

let node: RosterNode;
let client: RosterClient;
let app: Server;
let appHealthy = true;

before(async () => {
  node = await startTestNode();
  client = new RosterClient(`127.0.0.1:${node.grpcPort}`);
  app = createServer((req, res) => res.writeHead(req.url === '/health' && appHealthy ? 200 : 503).end());
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  await client.close();
  await new Promise((resolve) => app.close(resolve));
  await node.stop();
});

const statusOf = async (appName: string, id: string): Promise<InstanceStatus | undefined> => (await client.getApplication(appName)).instances.find((i) => i.instanceId === id)?.status;

/** The agent's "agent running" log line, which names its HTTP port. */
async function agentHttpPort(agent: ReturnType<typeof spawnRoster>): Promise<number> {
  return waitFor(
    'the agent to run',
    () => {
      for (const line of agent.output().split('\n')) {
        if (line.includes('"agent running"')) return (JSON.parse(line) as { httpPort: number }).httpPort;
      }
      if (agent.exitCode !== null) throw new Error(`agent exited ${agent.exitCode}: ${agent.output()}`);
      return undefined;
    },
    60_000,
  );
}

test('roster agent: probe verdicts become DOWN and UP; SIGTERM drains (OUT_OF_SERVICE, wait, cancel) and exits 0', { timeout: 120_000 }, async () => {
  const appPort = (app.address() as AddressInfo).port;
  // biome-ignore format: a flag and its value per line
  const agent = spawnRoster([
    'agent',
    '--server', `127.0.0.1:${node.grpcPort}`,
    '--app', 'web',
    '--instance-id', 'web-1',
    '--port', String(appPort),
    '--probe', `http://127.0.0.1:${appPort}/health`,
    '--probe-interval-ms', String(PROBE_INTERVAL_MS),
    '--failure-threshold', '1',
    '--success-threshold', '1',
    '--renew-secs', '1',
    '--drain-secs', String(DRAIN_SECS),
    '--http-port', '0',
    '--log-level', 'info',
  ]);
  try {
    const httpPort = await agentHttpPort(agent);
    await waitFor('web-1 UP', async () => (await statusOf('web', 'web-1')) === InstanceStatus.INSTANCE_STATUS_UP, 30_000);
    const healthz = (await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json()) as { apps: { app: string; health: string; status: string }[] };
    assert.deepEqual(
      healthz.apps.map((a) => [a.app, a.health, a.status]),
      [['web', 'healthy', 'UP']],
    );
    assert.equal((await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status, 200);

    appHealthy = false;
    let since = performance.now();
    await waitFor('web-1 DOWN', async () => (await statusOf('web', 'web-1')) === InstanceStatus.INSTANCE_STATUS_DOWN, 10_000);
    const downMs = performance.now() - since;
    assert.ok(downMs <= PROBE_INTERVAL_MS + WRITE_ALLOWANCE_MS, `DOWN ${Math.round(downMs)} ms after the app turned unhealthy (probe interval ${PROBE_INTERVAL_MS} ms)`);
    assert.equal((await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status, 503, '/readyz follows the probes');
    assert.equal((await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status, 200, '/healthz is the agent itself');

    appHealthy = true;
    since = performance.now();
    await waitFor('web-1 UP again', async () => (await statusOf('web', 'web-1')) === InstanceStatus.INSTANCE_STATUS_UP, 10_000);
    const upMs = performance.now() - since;
    assert.ok(upMs <= PROBE_INTERVAL_MS + WRITE_ALLOWANCE_MS, `UP ${Math.round(upMs)} ms after the app recovered`);

    // Drain: watch the registry from now, then SIGTERM.
    const abort = new AbortController();
    const seen: { type: ChangeType; status: InstanceStatus; at: number }[] = [];
    const from = (await client.listApplications()).revision;
    const watching = (async () => {
      for await (const m of client.watch({ app: 'web', sinceRevision: from }, { signal: abort.signal })) {
        for (const c of m.changes) seen.push({ type: c.type, status: (c.instance as Instance).status, at: performance.now() });
      }
    })();
    const exit = stopProcess(agent, 'SIGTERM');
    await waitFor('the cancel', () => seen.some((c) => c.type === ChangeType.CHANGE_TYPE_DELETED), 30_000);
    assert.equal(await exit, 0, agent.output());
    abort.abort();
    await watching;
    const oos = seen.find((c) => c.status === InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE && c.type === ChangeType.CHANGE_TYPE_MODIFIED);
    const deleted = seen.find((c) => c.type === ChangeType.CHANGE_TYPE_DELETED)!;
    assert.ok(oos !== undefined, `OUT_OF_SERVICE first: ${JSON.stringify(seen)}`);
    assert.ok(seen.indexOf(oos) < seen.indexOf(deleted));
    const drainedMs = deleted.at - oos.at;
    assert.ok(drainedMs >= DRAIN_SECS * 1000 - 50, `cancelled ${Math.round(drainedMs)} ms after OUT_OF_SERVICE (drain ${DRAIN_SECS} s)`);
    assert.deepEqual((await client.getApplication('web')).instances, []);
  } finally {
    await stopProcess(agent);
  }
});

test('roster agent: several applications from a file, each with its own probe (TCP, command, gRPC health)', { timeout: 120_000 }, async () => {
  const tcp: TcpServer = createTcpServer((s) => s.destroy());
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  const tcpPort = (tcp.address() as AddressInfo).port;
  const dir = mkdtempSync(join(tmpdir(), 'roster-agent-'));
  const marker = join(dir, 'ready');
  writeFileSync(marker, '');
  const file = join(dir, 'agent.json');
  writeFileSync(
    file,
    JSON.stringify({
      server: `127.0.0.1:${node.grpcPort}`,
      httpPort: 0,
      drainSecs: 0,
      apps: [
        { app: 'db', instanceId: 'db-1', port: tcpPort, probe: `tcp://127.0.0.1:${tcpPort}`, probeIntervalMs: 300, failureThreshold: 2, renewSecs: 1 },
        { app: 'batch', instanceId: 'batch-1', probe: `exec:test -f ${marker}`, probeIntervalMs: 300, failureThreshold: 1, renewSecs: 1 },
        { app: 'registry', instanceId: 'self', port: node.grpcPort, probe: `grpc://127.0.0.1:${node.grpcPort}/roster.v1.RegistryService`, probeIntervalMs: 300, renewSecs: 1 },
      ],
    }),
  );
  const agent = spawnRoster(['agent', '--config', file, '--log-level', 'info']);
  try {
    await agentHttpPort(agent);
    const up = async (a: string, id: string) => (await statusOf(a, id)) === InstanceStatus.INSTANCE_STATUS_UP;
    await waitFor('all three UP', async () => (await up('db', 'db-1')) && (await up('batch', 'batch-1')) && (await up('registry', 'self')), 30_000);

    await new Promise((resolve) => tcp.close(resolve));
    await waitFor('db-1 DOWN after two failed connects', async () => (await statusOf('db', 'db-1')) === InstanceStatus.INSTANCE_STATUS_DOWN, 10_000);
    assert.equal(await statusOf('batch', 'batch-1'), InstanceStatus.INSTANCE_STATUS_UP, 'the other apps are unaffected');

    rmSync(marker);
    await waitFor('batch-1 DOWN when its command fails', async () => (await statusOf('batch', 'batch-1')) === InstanceStatus.INSTANCE_STATUS_DOWN, 10_000);
    assert.equal(await statusOf('registry', 'self'), InstanceStatus.INSTANCE_STATUS_UP);

    assert.equal(await stopProcess(agent, 'SIGTERM'), 0, agent.output());
    for (const a of ['db', 'batch', 'registry']) assert.deepEqual((await client.getApplication(a)).instances, [], `${a} cancelled`);
  } finally {
    await stopProcess(agent);
  }
});

test('roster agent: a configuration problem exits 2 with one line naming every bad setting', { timeout: 60_000 }, async () => {
  const agent = spawnRoster(['agent', '--app', 'web', '--port', '70000', '--probe', 'ftp://x:1'], { ROSTER_AGENT_DRAIN_SECS: 'soon' });
  const code = await new Promise<number | null>((resolve) => agent.once('exit', resolve));
  assert.equal(code, 2, agent.output());
  const lines = agent.output().trim().split('\n');
  assert.equal(lines.length, 1, agent.output());
  assert.match(lines[0]!, /^roster: invalid agent configuration: /);
  for (const part of ['drainSecs="soon" (from env ROSTER_AGENT_DRAIN_SECS)', 'port="70000" (from flag --port)', 'probe="ftp://x:1"']) {
    assert.ok(lines[0]!.includes(part), `${part} in ${lines[0]}`);
  }
});
