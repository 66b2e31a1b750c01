import { constants } from 'node:os';

export interface ShutdownOptions {
  /** Runs once, on the first SIGTERM or SIGINT. */
  readonly shutdown: (signal: NodeJS.Signals) => Promise<void>;
  /** Exit (code 1) if `shutdown` has not settled by then; it should finish within its own grace. */
  readonly forceAfterMs: number;
  /** Told about each step, e.g. to log it. */
  readonly report?: (event: 'shutting down' | 'shutdown failed' | 'forced exit', fields: Record<string, unknown>) => void;
}

/** Far beyond any run; the interval only holds the event loop open. */
const KEEP_ALIVE_MS = 2 ** 30;

/**
 * Graceful stop on SIGTERM/SIGINT (Kubernetes sends SIGTERM, a terminal SIGINT): the first
 * signal runs `shutdown` and exits 0 when it succeeds (1 when it fails or overruns
 * `forceAfterMs`); a second signal exits at once with 128 + the signal number. Until then the
 * process stays up even when only unref'd timers (the clock's) are pending.
 */
export function exitOnSignals(options: ShutdownOptions): void {
  setInterval(() => undefined, KEEP_ALIVE_MS);
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      options.report?.('forced exit', { signal });
      process.exit(128 + (constants.signals[signal] ?? 0));
    }
    stopping = true;
    options.report?.('shutting down', { signal });
    setTimeout(() => {
      options.report?.('forced exit', { signal, afterMs: options.forceAfterMs });
      process.exit(1);
    }, options.forceAfterMs).unref();
    options.shutdown(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        options.report?.('shutdown failed', { err });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
