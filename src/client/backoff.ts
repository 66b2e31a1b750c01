import type { Clock } from '../core/clock.js';

/** Exponential backoff bounds. Defaults (100 ms to 30 s) match the replication reconnect policy. */
export interface BackoffOptions {
  readonly initialMs?: number;
  readonly maxMs?: number;
}

/**
 * The delay before retry number `attempt` (0-based): initial·2^attempt capped at max, with
 * "equal jitter" (half fixed, half random) so a fleet that failed together does not retry
 * together, while a retry never comes sooner than half the nominal delay.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = options.initialMs ?? 100;
  const max = options.maxMs ?? 30_000;
  const nominal = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return nominal / 2 + (random() * nominal) / 2;
}

/**
 * Waits `ms` on `clock`. Resolves true when the time passed, false when `signal` aborted
 * first (never rejects), so loops can simply stop.
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clock.clearTimeout(timer);
      resolve(false);
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
