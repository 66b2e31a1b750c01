import { createRequire } from 'node:module';
import { isatty } from 'node:tty';
import { pino, stdSerializers, type Logger } from 'pino';
import type * as prettyModule from 'pino-pretty';
import { isServiceError } from '../client/errors.js';
import type { LogFormat, LogLevel } from './config.js';

/**
 * A logger writing synchronously to `fd` (stdout for the server, stderr for client commands so
 * their stdout stays machine-readable). Synchronous so that the last lines before process.exit
 * are not lost. `auto` picks human-readable lines when `fd` is a terminal and JSON lines
 * (labels for levels, ISO-8601 times) otherwise, for log collectors and scripts.
 */
export function createLogger(level: LogLevel, fd: 1 | 2 = 1, format: LogFormat = 'auto'): Logger {
  const pretty = format === 'pretty' || (format === 'auto' && isatty(fd));
  const options = {
    level,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    serializers: { err: serializeError },
  };
  if (!pretty) return pino(options, pino.destination({ dest: fd, sync: true }));
  // Loaded only for a terminal: a node logging JSON (a container, a service) never holds it.
  const { PinoPretty } = createRequire(import.meta.url)('pino-pretty') as typeof prettyModule;
  return pino(
    // pino-pretty prints the error key as a block under the line; components log errors as
    // `err`, so naming another key keeps each event on one line.
    { ...options, errorKey: 'error' },
    PinoPretty({
      destination: fd,
      sync: true,
      colorize: isatty(fd),
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
      singleLine: true,
      errorLikeObjectKeys: [],
    }),
  );
}

/**
 * gRPC status errors and system errors (ECONNREFUSED, ENOTFOUND...) are expected conditions (a
 * peer or server down, NOT_FOUND, a DNS name not there yet): their code and message say it all,
 * so they are logged without a stack trace. Anything else is a bug and keeps its stack.
 */
function serializeError(err: unknown): unknown {
  if (isServiceError(err)) return { code: err.code, details: err.details.replace(/\s+/g, ' ').trim() };
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (err instanceof Error && typeof code === 'string' && /^E[A-Z]+$/.test(code)) return { code, message: err.message };
  return err instanceof Error ? stdSerializers.err(err) : err;
}
