import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { pino } from 'pino';
import { SystemClock } from '../../src/core/clock.js';
import { Registry } from '../../src/core/registry.js';
import { startGrpcServer } from '../../src/grpc/server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLIENT = fileURLToPath(new URL('./client.py', import.meta.url));
// Debian's interpreter: the python3 first on PATH may be another one that cannot see python3-grpcio.
const PYTHON = '/usr/bin/python3';
const GRPC_PYTHON_PLUGIN = '/usr/bin/grpc_python_plugin';
const INSTALL_HINT =
  'apt-get install -y python3-grpcio python3-grpc-tools protobuf-compiler protobuf-compiler-grpc (listed in .ci/apt-packages)';
const PROTOS = ['instance', 'registry_service', 'replication_service'].map((name) => `proto/roster/v1/${name}.proto`);

/** Every check client.py makes; the summary must report each one as passed. */
const EXPECTED_CHECKS = [
  'list_applications',
  'register_app_lowercased',
  'register_metadata',
  'register_fields',
  'register_lease',
  'register_revision',
  'get_instance_roundtrip',
  'heartbeat_ok',
  'heartbeats_batch_ids',
  'heartbeats_results',
  'update_metadata',
  'heartbeat_after_cancel_not_found',
  'watch_events',
  'watch_event_content',
  'watch_revisions_increase',
  'invalid_port',
  'invalid_app',
  'missing_instance_id',
  'invalid_changes_nothing',
];

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program to completion (killed after `timeoutMs`); never rejects. */
function run(file: string, args: readonly string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: ROOT, timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr: err !== null && code === null ? `${stderr}\n${err.message}` : stderr });
    });
  });
}

/** What is missing to run the test, or undefined when everything is there. */
async function missingTools(): Promise<string | undefined> {
  if (!existsSync(PYTHON)) return `${PYTHON} is missing`;
  const imports = await run(PYTHON, ['-c', 'import grpc, google.protobuf'], 15_000);
  if (imports.code !== 0) return `${PYTHON} cannot import grpc and google.protobuf: ${imports.stderr.trim().split('\n').at(-1)}`;
  const protoc = await run('protoc', ['--version'], 15_000);
  if (protoc.code !== 0) return 'protoc is not on PATH';
  if (!existsSync(GRPC_PYTHON_PLUGIN)) return `${GRPC_PYTHON_PLUGIN} is missing`;
  return undefined;
}

const inCi = (): boolean => !['', '0', 'false'].includes((process.env.CI ?? '').toLowerCase());

test('a Python grpcio client, with stubs generated from proto/, uses every RegistryService basic', { timeout: 90_000 }, async (t) => {
  const missing = await missingTools();
  if (missing !== undefined) {
    if (inCi()) assert.fail(`Python interop cannot run: ${missing}. Install: ${INSTALL_HINT}`);
    t.skip(`${missing} (install: ${INSTALL_HINT})`);
    return;
  }

  const stubDir = await mkdtemp(join(tmpdir(), 'roster-pystubs-'));
  t.after(() => rm(stubDir, { recursive: true, force: true }));
  const protoc = await run(
    'protoc',
    ['-Iproto', `--python_out=${stubDir}`, `--grpc_out=${stubDir}`, `--plugin=protoc-gen-grpc=${GRPC_PYTHON_PLUGIN}`, ...PROTOS],
    30_000,
  );
  assert.equal(protoc.code, 0, `protoc failed: ${protoc.stderr}`);

  const clock = new SystemClock();
  const registry = new Registry({ clock });
  registry.start();
  const server = await startGrpcServer({ registry, clock, logger: pino({ level: 'silent' }) });
  t.after(async () => {
    await server.shutdown(1000);
    registry.stop();
  });

  const python = await run(PYTHON, [CLIENT, String(server.port), stubDir], 60_000);
  const lastLine = python.stdout.trim().split('\n').at(-1) ?? '';
  let summary: { ok: boolean; checks: Record<string, boolean>; failures: string[]; python: string; grpcio: string; protobuf: string };
  try {
    summary = JSON.parse(lastLine);
  } catch {
    assert.fail(`client.py printed no JSON summary (exit ${python.code}).\nstdout: ${python.stdout}\nstderr: ${python.stderr}`);
  }
  assert.deepEqual(summary.failures, [], `client.py failures (stderr: ${python.stderr})`);
  assert.deepEqual(
    EXPECTED_CHECKS.filter((name) => summary.checks[name] !== true),
    [],
    'checks that did not pass (or did not run)',
  );
  assert.equal(summary.ok, true);
  t.diagnostic(`python ${summary.python}, grpcio ${summary.grpcio}, protobuf ${summary.protobuf}: ${EXPECTED_CHECKS.length} checks passed`);
  assert.equal(python.code, 0, `client.py exited ${python.code}: ${python.stderr}`);
});
