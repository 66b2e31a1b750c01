import type { ChildProcess } from 'node:child_process';
import { waitFor } from './wait.js';

/** Waits until a node's `/readyz` answers 200 (a refused connection counts as not yet). */
export async function untilReady(name: string, httpPort: number, timeoutMs: number, exited?: () => string | undefined): Promise<void> {
  await waitFor(
    `${name} ready`,
    async () => {
      const why = exited?.();
      if (why !== undefined) throw new Error(`${name} exited: ${why}`);
      try {
        return (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).ok;
      } catch {
        return false;
      }
    },
    timeoutMs,
  );
}

/** Signals `child` and resolves with its exit code (null when a signal ended it). */
export async function stopProcess(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill(signal);
  return exited;
}
