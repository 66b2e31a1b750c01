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
 * Loading the modules makes most of what they allocate survive, and V8 doubles its young
 * generation each time that much has survived: by the time a node listened, its two semi-spaces
 * had grown to 16 MiB, pages an idle node kept for the next 15 s or so (until V8's memory reducer).
 * So the young generation keeps its initial size while the program loads and starts, and grows
 * again as usual from then on (V8 reads the factor each time it grows; 2 is its default). A
 * growth factor given on node's command line is left alone (NODE_OPTIONS cannot carry one).
 */
const YOUNG_GROWTH_FLAG = '--semi-space-growth-factor';
const V8_DEFAULT_YOUNG_GROWTH = 2;
const userGrowth = process.execArgv.some((arg) => /semi[-_]space[-_]growth[-_]factor/.test(arg));
if (!userGrowth) setFlagsFromString(`${YOUNG_GROWTH_FLAG}=1`);
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
  // main.js resolves once the command is done, for `serve` once the node is serving.
  if (!userGrowth) setFlagsFromString(`${YOUNG_GROWTH_FLAG}=${V8_DEFAULT_YOUNG_GROWTH}`);
}
