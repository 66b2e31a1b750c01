import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';

/**
 * A JSON logger writing synchronously to `fd` (stdout for the server, stderr for client
 * commands so their stdout stays machine-readable). Synchronous so that the last lines before
 * process.exit are not lost; levels are labels ("info"), times ISO-8601, for log collectors.
 */
export function createLogger(level: LogLevel, fd: 1 | 2 = 1): Logger {
  return pino(
    {
      level,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: fd, sync: true }),
  );
}
