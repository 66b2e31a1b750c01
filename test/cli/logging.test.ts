import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { ROOT } from './process.js';

/** Runs a script that logs through createLogger(level, fd 1, format) with stdout a pipe (not a terminal). */
async function logOutput(format: string): Promise<string[]> {
  const script = `
    import { createLogger } from './src/cli/logging.ts';
    import { clientError } from './src/client/errors.ts';
    const log = createLogger('info', 1, ${JSON.stringify(format)});
    log.warn({ err: clientError(14, 'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1') }, 'server down');
    log.warn({ err: Object.assign(new Error('getaddrinfo ENOTFOUND roster-headless'), { code: 'ENOTFOUND' }) }, 'dns');
    log.error({ err: new TypeError('a bug') }, 'bug');
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  assert.equal(code, 0, err);
  return out.trim().split('\n');
}

test('logs are JSON lines off a terminal; expected conditions carry no stack trace, bugs do', async () => {
  const [down, dns, bug] = (await logOutput('auto')).map((l) => JSON.parse(l) as { level: string; time: string; msg: string; err: Record<string, unknown> });
  assert.equal(down!.level, 'warn');
  assert.match(down!.time, /^\d{4}-\d\d-\d\dT/);
  assert.deepEqual(down!.err, { code: 14, details: 'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1' });
  assert.deepEqual(dns!.err, { code: 'ENOTFOUND', message: 'getaddrinfo ENOTFOUND roster-headless' });
  assert.match(String(bug!.err.stack), /TypeError: a bug\n\s+at /);
});

test('--log-format pretty prints one human line per event', async () => {
  const lines = await logOutput('pretty');
  assert.match(lines[0]!, /^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: server down \{"err":\{"code":14,/);
  assert.match(lines[1]!, /^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: dns \{"err":\{"code":"ENOTFOUND",/);
  assert.match(lines[2]!, /^\[\d\d:\d\d:\d\d\.\d{3}\] ERROR: bug \{"err":\{"type":"TypeError",.*"stack":"TypeError: a bug\\n\s+at /, 'the bug keeps its stack');
  assert.equal(lines.length, 3);
});
