import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { RosterClient } from '../../src/client/index.js';
import { startTestNode, waitFor } from './harness.js';
import { freePort } from '../support/ports.js';
import { stopProcess } from '../support/nodes.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
/** A child environment without tsx: NODE_OPTIONS could carry a loader into it. */
const plainEnv = { ...process.env, NODE_OPTIONS: '' };

test('a plain node script imports the compiled client as roster/client, with types', { timeout: 60_000 }, async () => {
  // Build dist/ as `npm ci` does (prepare), so the test checks this tree's output, not a stale one.
  await run(process.execPath, ['scripts/build.js'], { cwd: root, env: plainEnv });
  await run(process.execPath, [fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url)), '-p', fixture('tsconfig.json')], { cwd: root });

  const node = await startTestNode();
  const direct = new RosterClient(`127.0.0.1:${node.grpcPort}`);
  try {
    const { stdout } = await run(process.execPath, [fixture('plain-client.mjs'), `127.0.0.1:${node.grpcPort}`], { cwd: root, env: plainEnv, timeout: 30_000 });
    assert.deepEqual(JSON.parse(stdout), { picked: 'plain-1', registrations: 1, resolver: 'function' });
    assert.deepEqual((await direct.getApplication('plain')).instances, [], 'close() cancelled the instance');
  } finally {
    await direct.close();
    await node.stop();
  }
});

test('the server runs from the compiled output (node dist/cli/main.js serve)', { timeout: 60_000 }, async () => {
  await run(process.execPath, ['scripts/build.js'], { cwd: root, env: plainEnv });
  const httpPort = await freePort();
  const child = spawn(process.execPath, ['dist/cli/main.js', 'serve', '--port', '0', '--http-port', String(httpPort), '--log-level', 'warn'], {
    cwd: root,
    env: plainEnv,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await waitFor(
      'the compiled server to be ready',
      async () => {
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${stderr}`);
        return fetch(`http://127.0.0.1:${httpPort}/readyz`).then(
          (r) => r.ok,
          () => false,
        );
      },
      30_000,
    );
    // Files the code reads next to itself (descriptor sets, the dashboard) were copied too.
    assert.equal((await fetch(`http://127.0.0.1:${httpPort}/`)).status, 200);
  } finally {
    await stopProcess(child, 'SIGTERM');
  }
});
