#!/usr/bin/env node
// The `roster` command. Runs the compiled JavaScript in dist/ (`npm run build`, which `npm ci`
// runs through `prepare`) when it was built after the last change to src/: an empty node then
// needs about 40 MiB less than with tsx compiling TypeScript in memory. Otherwise (a checkout
// edited since, or never built) it runs src/ through tsx, so stale code is never run.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

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

const built = builtAt();
if (built > 0 && !changedSince(built)) {
  await import('../dist/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
