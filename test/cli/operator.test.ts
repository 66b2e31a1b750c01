import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { RosterClient } from '../../src/client/index.js';
import { killAll, ROOT, run, start, type Running } from './process.js';
import { freePort } from '../support/ports.js';

/** What an operator meets at the command line: retries, timeouts, one-line errors, logs, commands. */

let server: Running;
let address: string;
let httpAddress: string;
let client: RosterClient;

before(async () => {
  server = start(['serve', '--port', '0', '--http-port', '0', '--node-id', 'operator-test']);
  const started = JSON.parse(await server.line((l) => l.includes('"roster started"'))) as { grpcPort: number; httpPort: number };
  address = `127.0.0.1:${started.grpcPort}`;
  httpAddress = `127.0.0.1:${started.httpPort}`;
  client = new RosterClient(address);
});

after(() => {
  client.close();
  killAll();
});

/** Whether `port` can be bound again on 127.0.0.1 (nobody holds it), retried for up to `withinMs`. */
async function portIsFree(port: number, withinMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const s = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) {
      await new Promise((resolve) => s.close(resolve));
      return true;
    }
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function assertOneCalmLine(stderr: string, context: string): void {
  assert.equal(stderr.trim().split('\n').length, 1, `${context}: one line, got ${JSON.stringify(stderr)}`);
  assert.doesNotMatch(stderr, /^\s+at /m, `${context}: no stack trace`);
}

test('register with the server down retries with backoff, one human line per attempt, and registers once it is up', async () => {
  const port = await freePort();
  const agent = start(['register', '--server', `127.0.0.1:${port}`, '--app', 'late', '--id', 'l-1', '--renew-secs', '1', '--attempts', '40']);
  await agent.stderrMatch(/attempt 2 of 40/, 30_000);
  const late = start(['serve', '--port', String(port), '--http-port', '0', '--node-id', 'late']);
  await late.line((l) => l.includes('"roster started"'));
  assert.match(await agent.line((l) => l.startsWith('registered'), 30_000), /^registered late\/l-1 \(UP\)/);
  const attempts = agent.stderr().trim().split('\n');
  assert.ok(attempts.length >= 2);
  for (const line of attempts) {
    assert.match(
      line,
      new RegExp(
        `^roster: cannot reach a Roster node at 127\\.0\\.0\\.1:${port} \\(connection refused\\): is it running\\? \\(--server, ROSTER_SERVER\\); attempt \\d+ of 40, retrying in [\\d.]+ m?s$`,
      ),
    );
  }

  // The server goes away: the agent's renewal failures are logged without stack traces.
  late.child.kill('SIGKILL');
  await agent.stderrMatch(/renewal failed/, 15_000);
  const logged = agent.stderr().trim().split('\n').slice(attempts.length);
  for (const line of logged) {
    const entry = JSON.parse(line) as { level: string; err?: { code: number; stack?: string } };
    assert.equal(entry.level, 'warn', line);
    assert.equal(entry.err?.code, 14, line);
    assert.equal(entry.err?.stack, undefined, line);
  }
  agent.child.kill('SIGKILL');
});

test('client commands take --timeout and say in one line what is wrong, with documented exit codes', async () => {
  const closed = await run(['apps', '--server', `127.0.0.1:${await freePort()}`]);
  assert.equal(closed.code, 4);
  assert.match(closed.stderr, /^roster: cannot reach a Roster node at 127\.0\.0\.1:\d+ \(connection refused\): is it running\?/);
  assertOneCalmLine(closed.stderr, 'connection refused');

  const http = await run(['get', 'billing', '--server', httpAddress]);
  assert.equal(http.code, 4);
  assert.match(http.stderr, /does not speak gRPC \(an HTTP port\?\): give the node's gRPC port \(default 8761\), not its HTTP port/);
  assertOneCalmLine(http.stderr, 'HTTP port');

  // A server that accepts connections and never answers.
  const sockets = new Set<Socket>();
  const silent: Server = createServer((s) => sockets.add(s));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const began = Date.now();
    const slow = await run(['apps', '--server', `127.0.0.1:${(silent.address() as { port: number }).port}`, '--timeout', '300ms']);
    assert.equal(slow.code, 4);
    assert.match(slow.stderr, /^roster: no answer from 127\.0\.0\.1:\d+ within 300 ms \(--timeout\)$/m);
    assertOneCalmLine(slow.stderr, 'timeout');
    // Well under the 60 s a snapshot read would otherwise get, even with a slow process start.
    assert.ok(Date.now() - began < 45_000, 'the timeout bounds the call');
  } finally {
    for (const s of sockets) s.destroy();
    silent.close();
  }

  for (const args of [
    ['get', 'nope-app', 'nope-id'],
    ['get', 'nope-app'],
    ['vip', 'nope-vip'],
    ['cancel', 'nope-app', 'nope-id'],
  ]) {
    const missing = await run([...args, '--server', address]);
    assert.equal(missing.code, 3, `${args.join(' ')}: ${missing.stderr}`);
    assert.match(missing.stderr, /^roster: not found: /);
    assertOneCalmLine(missing.stderr, args.join(' '));
  }
});

test('cancel, metadata set and rm, vip, delta, --version, and help that shows defaults, required options and valid statuses', async () => {
  const { revision: since } = await client.listApplications();
  await client.register({ app: 'ops', instanceId: 'o-1', ipAddr: '10.9.0.1', port: { number: 80, enabled: true }, vipAddress: 'ops-vip' });

  const set = await run(['metadata', 'set', 'ops', 'o-1', 'team=core', 'tier=1', '--server', address]);
  assert.equal(set.code, 0, set.stderr);
  assert.equal(set.stdout, 'ops/o-1: metadata team=core tier=1\n');
  const rm = await run(['metadata', 'rm', 'ops', 'o-1', 'team', '--server', address]);
  assert.equal(rm.stdout, 'ops/o-1: metadata tier=1\n');

  const vip = await run(['vip', 'ops-vip', '--server', address]);
  assert.equal(vip.code, 0, vip.stderr);
  assert.match(vip.stdout, /^o-1\s+UP\s+-\s+10\.9\.0\.1:80\s/m);

  const cancel = await run(['cancel', 'ops', 'o-1', '--server', address]);
  assert.equal(cancel.code, 0, cancel.stderr);
  assert.match(cancel.stdout, /^cancelled ops\/o-1 \(revision \d+\)\n$/);

  const delta = await run(['delta', '--since', String(since), '--server', address]);
  assert.equal(delta.code, 0, delta.stderr);
  const lines = delta.stdout.trim().split('\n');
  assert.match(lines[0]!, /^REVISION\s+CHANGE\s+INSTANCE\s+STATUS\s+ADDRESS$/);
  assert.deepEqual(
    lines.slice(1, -1).map((l) => l.split(/\s+/)[1]),
    ['ADDED', 'MODIFIED', 'MODIFIED', 'CANCELLED'],
  );
  assert.match(lines.at(-1)!, /^revision \d+, 4 changes$/);

  const version = await run(['--version']);
  assert.equal(version.stdout.trim(), (JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { version: string }).version);

  const bad = await run(['status', 'ops', 'o-1', 'sideways', '--server', address]);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'roster: unknown status "sideways": use one of UP, DOWN, STARTING, OUT_OF_SERVICE\n');
  const statusHelp = (await run(['status', '--help'])).stdout;
  assert.match(statusHelp, /UP, DOWN, STARTING, OUT_OF_SERVICE/);
  const registerHelp = (await run(['register', '--help'])).stdout.replace(/\s+/g, ' ');
  assert.match(registerHelp, /--app <app> application name \(required\)/);
  assert.match(registerHelp, /\(default: "127\.0\.0\.1:8761", env: ROSTER_SERVER\)/);
  assert.match(registerHelp, /--timeout <duration> .*\(default: 5s\)/);
  const serveHelp = (await run(['serve', '--help'])).stdout.replace(/\s+/g, ' ');
  assert.match(serveHelp, /--port <value> gRPC port \(0 picks a free port\) \(default: 8761\) \[env ROSTER_PORT\]/);
  assert.match(serveHelp, /--log-format <value> .*\(default: auto\)/);
  assert.match((await run(['--help'])).stdout, /^\s+3\s+not found/m, 'exit codes documented');
});

test('watch says what it watches and from which revision at once, in aligned columns, and tells evictions from cancels', async () => {
  const watch = start(['watch', 'w-app', '--server', address]);
  await watch.stderrMatch(new RegExp(`^watching application w-app on ${address.replace(/\./g, '\\.')} from revision \\d+ \\(now\\); Ctrl-C to stop$`, 'm'));
  const header = await watch.line((l) => l.startsWith('REVISION'));
  await client.register({ app: 'w-app', instanceId: 'dies', lease: { renewalIntervalSecs: 1, durationSecs: 1 } });
  await client.register({ app: 'w-app', instanceId: 'leaves' });
  await client.cancel('w-app', 'leaves');
  const evicted = await watch.line((l) => l.includes('EVICTED'), 15_000);
  const rows = watch.stdout().trim().split('\n').slice(1);
  assert.deepEqual(
    rows.map((r) => r.split(/\s+/).slice(1, 3)),
    [
      ['ADDED', 'w-app/dies'],
      ['ADDED', 'w-app/leaves'],
      ['CANCELLED', 'w-app/leaves'],
      ['EVICTED', 'w-app/dies'],
    ],
  );
  assert.ok(rows.includes(evicted));
  for (const column of ['CHANGE', 'INSTANCE', 'STATUS']) {
    const at = header.indexOf(column);
    for (const row of rows) assert.match(row.slice(at - 2, at), /^ {2}$/, `${column} aligned in ${JSON.stringify(row)}`);
    for (const row of rows) assert.match(row.slice(at, at + 1), /\S/, `${column} aligned in ${JSON.stringify(row)}`);
  }
  watch.child.kill('SIGTERM');
  assert.equal(await watch.exit(), 0, watch.stderr());
});

test('logs are JSON lines when stdout is not a terminal, human lines with --log-format pretty, and a standalone node mentions the missing credentials once, calmly', async () => {
  const json = server
    .stdout()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { level: string; msg: string });
  const token = json.filter((l) => /no credentials configured/.test(l.msg));
  assert.equal(token.length, 1);
  assert.equal(token[0]!.level, 'info');

  const pretty = start(['serve', '--port', '0', '--http-port', '0', '--log-format', 'pretty']);
  const line = await pretty.line((l) => l.includes('roster started'));
  assert.match(line, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: roster started \{.*"grpcPort":\d+/);
  pretty.child.kill('SIGTERM');
  assert.equal(await pretty.exit(), 0);
});

test('killing the process that npm start launched, by its PID, stops the server and frees its ports; same for npm run roster register', async () => {
  const npm = start(['--port', '0', '--http-port', '0'], ['npm', 'start', '--']);
  const started = JSON.parse(await npm.line((l) => l.includes('"roster started"'), 30_000)) as { grpcPort: number; httpPort: number };
  npm.child.kill('SIGTERM');
  await npm.exit(15_000);
  assert.ok(await portIsFree(started.grpcPort), `gRPC port ${started.grpcPort} still held`);
  assert.ok(await portIsFree(started.httpPort), `HTTP port ${started.httpPort} still held`);

  const agent = start(['register', '--server', address, '--app', 'npm-app', '--id', 'n-1'], ['npm', 'run', '--silent', 'roster', '--']);
  await agent.line((l) => l.startsWith('registered npm-app/n-1'), 30_000);
  agent.child.kill('SIGTERM');
  await agent.exit(15_000);
  const gone = await run(['get', 'npm-app', 'n-1', '--server', address]);
  assert.equal(gone.code, 3, 'the instance was cancelled on the way out');
});
