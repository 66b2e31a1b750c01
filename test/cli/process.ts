import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = 'src/cli/main.ts';
const spawned = new Set<ChildProcess>();

/** A running `roster` process whose stdout is read line by line. */
export interface Running {
  readonly child: ChildProcess;
  readonly stderr: () => string;
  /** Everything printed on stdout so far. */
  readonly stdout: () => string;
  /** The next stdout line `match` accepts (earlier lines are skipped), within `timeoutMs`. */
  line(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Resolves once stderr so far matches `pattern`, within `timeoutMs`. */
  stderrMatch(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Waits for the exit code, within `timeoutMs`. */
  exit(timeoutMs?: number): Promise<number | null>;
}

/** The test's environment without ROSTER_* variables, plus `extra`. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ROSTER_')));
  return { ...env, ...extra };
}

/** Starts `roster ARGS` (or `command` when given, e.g. npm) and reads its stdout line by line. */
export function start(args: readonly string[], command: readonly string[] = [process.execPath, '--import', 'tsx', MAIN]): Running {
  const child = spawn(command[0]!, [...command.slice(1), ...args], {
    cwd: ROOT,
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned.add(child);
  let stderr = '';
  const stderrWaiters = new Set<() => void>();
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    for (const w of stderrWaiters) w();
  });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout! }).on('line', (l) => {
    lines.push(l);
    for (const w of waiters) w();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  exited.then(
    () => spawned.delete(child),
    () => undefined,
  );
  let cursor = 0;
  return {
    child,
    stderr: () => stderr,
    stdout: () => lines.map((l) => `${l}\n`).join(''),
    line: (match, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          while (cursor < lines.length) {
            const l = lines[cursor++]!;
            if (match(l)) {
              done();
              resolve(l);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no matching line from roster ${args.join(' ')} in ${timeoutMs} ms; stdout: ${lines.join('\n')}; stderr: ${stderr}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
    stderrMatch: (pattern, timeoutMs = 15_000) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (!pattern.test(stderr)) return;
          clearTimeout(timer);
          stderrWaiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          stderrWaiters.delete(check);
          reject(new Error(`stderr of roster ${args.join(' ')} never matched ${pattern} in ${timeoutMs} ms: ${stderr}`));
        }, timeoutMs);
        stderrWaiters.add(check);
        check();
      }),
    exit: (timeoutMs = 15_000) =>
      Promise.race([exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`roster ${args.join(' ')} did not exit in ${timeoutMs} ms`)), timeoutMs).unref())]),
  };
}

/** Runs a command to completion: exit code, stdout, stderr. */
export async function run(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(timer);
  spawned.delete(child);
  return { code, stdout, stderr };
}

/** Kills whatever a test left running (after a failure). */
export function killAll(): void {
  for (const child of spawned) child.kill('SIGKILL');
}
