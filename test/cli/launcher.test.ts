import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/**
 * bin/roster.js in a scratch checkout whose dist/ and src/ entry points only say which one ran,
 * so the choice is seen without building anything.
 */
function checkout(): { dir: string; run: (nodeArgs?: readonly string[]) => string; touch: (path: string, at: Date) => void } {
  const dir = mkdtempSync(join(tmpdir(), 'roster-launcher-'));
  mkdirSync(join(dir, 'bin'));
  mkdirSync(join(dir, 'dist', 'cli'), { recursive: true });
  mkdirSync(join(dir, 'src', 'cli'), { recursive: true });
  copyFileSync(join(REPO, 'bin', 'roster.js'), join(dir, 'bin', 'roster.js'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(join(dir, 'dist', 'cli', 'main.js'), "console.log('dist');\n");
  writeFileSync(join(dir, 'src', 'cli', 'main.ts'), "const from: string = 'src';\nconsole.log(from);\n");
  const touch = (path: string, at: Date): void => utimesSync(join(dir, path), at, at);
  const run = (nodeArgs: readonly string[] = []): string => execFileSync(process.execPath, [...nodeArgs, join(dir, 'bin', 'roster.js')], { encoding: 'utf8' }).trim();
  return { dir, run, touch };
}

/** Makes `program` the checkout's dist/ entry point, built after the last change to src/. */
function builtWith(dir: string, touch: (path: string, at: Date) => void, program: string): void {
  writeFileSync(join(dir, 'dist', 'cli', 'main.js'), program);
  const built = new Date(Date.now() - 60_000);
  touch('src/cli/main.ts', new Date(built.getTime() - 60_000));
  writeFileSync(join(dir, 'dist', '.build-stamp'), `${built.toISOString()}\n`);
  touch('dist/.build-stamp', built);
}

describe('bin/roster.js', () => {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  test('runs dist/ when it was built after the last change to src/, the sources through tsx otherwise', () => {
    const { dir, run, touch } = checkout();
    dirs.push(dir);
    const built = new Date(Date.now() - 60_000);
    const before = new Date(built.getTime() - 60_000);
    touch('src/cli/main.ts', before);
    assert.equal(run(), 'src', 'never built: the sources');
    writeFileSync(join(dir, 'dist', '.build-stamp'), `${built.toISOString()}\n`);
    touch('dist/.build-stamp', built);
    assert.equal(run(), 'dist', 'built after every change');
    touch('src/cli/main.ts', new Date(built.getTime() + 1000));
    assert.equal(run(), 'src', 'a source edited since the build: never the stale dist/');
    touch('src/cli/main.ts', before);
    writeFileSync(join(dir, 'src', 'cli', 'added.ts'), 'export {};\n');
    assert.equal(run(), 'src', 'a file added since the build');
  });

  test('keeps the young generation at its initial size while the program loads, lets it grow once loaded', () => {
    const { dir, run, touch } = checkout();
    dirs.push(dir);
    // Survivors of a few scavenges: enough for V8 to double the young generation up to its maximum.
    const program = `
      import { getHeapSpaceStatistics } from 'node:v8';
      const young = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
      const survivors = [];
      const fill = () => { for (let i = 0; i < 400_000; i++) survivors.push({ i, s: 'x' + i }); };
      fill();
      const loading = young();
      setImmediate(() => { fill(); console.log(JSON.stringify({ loading, loaded: young() })); });
    `;
    builtWith(dir, touch, program);
    const MiB = 1024 * 1024;
    const { loading, loaded } = JSON.parse(run()) as { loading: number; loaded: number };
    assert.ok(loading <= 2 * MiB, `young generation while loading: ${loading / MiB} MiB`);
    assert.ok(loaded > 2 * MiB, `young generation once loaded: ${loaded / MiB} MiB`);
    const own = JSON.parse(run(['--semi-space-growth-factor=2'])) as { loading: number };
    assert.ok(own.loading > 2 * MiB, `a growth factor given to node is left alone: ${own.loading / MiB} MiB`);
  });

  test('compiles no function beyond bytecode while the program loads, as usual once its command has started', () => {
    const { dir, run, touch } = checkout();
    dirs.push(dir);
    // %GetOptimizationStatus (with --allow-natives-syntax): bit 64 is "optimised by TurboFan",
    // 32768 "compiled by Sparkplug"; optimising on the main thread makes that known right after the hot loop.
    const program = `
      function hot(x) { let s = 0; for (let i = 0; i < 100; i++) s += (x * i) % 7; return s; }
      const optimised = () => (%GetOptimizationStatus(hot) & (64 | 32768)) !== 0;
      const spin = () => { let t = 0; for (let i = 0; i < 200_000; i++) t += hot(i); return t; };
      spin();
      const loading = optimised();
      // What main does once its command has started (a node serving, an agent running).
      process.emit('roster:started');
      spin();
      console.log(JSON.stringify({ loading, loaded: optimised() }));
    `;
    builtWith(dir, touch, program);
    const nodeArgs = ['--allow-natives-syntax', '--no-concurrent-recompilation'];
    assert.deepEqual(JSON.parse(run(nodeArgs)), { loading: false, loaded: true });
    assert.deepEqual(JSON.parse(run([...nodeArgs, '--turbofan'])), { loading: true, loaded: true }, '--turbofan given to node is left alone');
  });
});
