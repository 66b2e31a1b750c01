#!/usr/bin/env node
// The `roster` command. Runs the compiled JavaScript in dist/ (`npm run build`, which `npm ci`
// runs through `prepare`) when it was built after the last change to src/: an empty node then
// needs about 40 MiB less than with tsx compiling TypeScript in memory. Otherwise (a checkout
// edited since, or never built) it runs src/ through tsx, so stale code is never run.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';

const root = fileURLToPath(new URL('..', import.meta.url));

/** When dist/ was built (the build writes this stamp last, dated when it started), or 0. */
function builtAt() {
  try {
    return statSync(`${root}dist/.build-stamp`).mtimeMs;
  } catch {
    return 0;
  }
}

/** Whether some file under src/ changed (or appeared) after `time`; false without src/ (dist only). */
function changedSince(time) {
  if (!existsSync(`${root}src`)) return false;
  for (const entry of readdirSync(`${root}src`, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && statSync(`${entry.parentPath}/${entry.name}`).mtimeMs > time) return true;
  }
  return false;
}

/**
 * Three V8 settings hold while the program loads and starts, and go back to V8's defaults once
 * it runs (V8 reads each whenever it decides; one given to node on its command line is kept):
 * - the young generation keeps its initial size: loading makes most of what it allocates
 *   survive, and V8 doubles the young generation each time that much has survived, so by the
 *   time a node listened its semi-spaces had grown to 16 MiB, pages an idle node then kept for
 *   the next 15 s or so (until V8's memory reducer), 12 MiB of its RSS;
 * - no function is compiled beyond bytecode: module loading made a few dozen of node's own
 *   functions hot enough for TurboFan, whose compiler code, paged in for them, stayed 4-5 MiB
 *   of an idle node's RSS, and Sparkplug's code for them about 1 MiB more. Start-up took the
 *   same CPU time without either (about 0.4 s).
 */
const LOADING_FLAGS = [
  { given: /^--semi[-_]space[-_]growth[-_]factor=/, loading: '--semi-space-growth-factor=1', running: '--semi-space-growth-factor=2' },
  { given: /^--(no-)?(turbofan|opt)$/, loading: '--no-turbofan', running: '--turbofan' },
  { given: /^--(no-)?sparkplug$/, loading: '--no-sparkplug', running: '--sparkplug' },
].filter(({ given }) => !process.execArgv.some((arg) => given.test(arg)));
for (const flag of LOADING_FLAGS) setFlagsFromString(flag.loading);
let loaded = false;
const running = () => {
  if (loaded) return;
  loaded = true;
  for (const flag of LOADING_FLAGS) setFlagsFromString(flag.running);
};
// main emits this once its command has started: a node once it serves, any other command
// once its modules are loaded (`agent` and `watch` then run for as long as they are left to).
process.once('roster:started', running);
try {
  const built = builtAt();
  if (built > 0 && !changedSince(built)) {
    await import('../dist/cli/main.js');
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    await import('../src/cli/main.ts');
  }
} finally {
  running();
}
