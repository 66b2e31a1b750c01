import { status as grpcStatus } from '@grpc/grpc-js';
import { isServiceError } from '../client/errors.js';

/**
 * Exit codes, documented in `roster --help` and the README. Errors are one line on stderr,
 * `roster: ...`, never a stack trace for an expected condition.
 */
export const EXIT = {
  /** An RPC or runtime failure (the line names the gRPC status). */
  failure: 1,
  /** Bad usage or configuration. */
  usage: 2,
  /** The instance, application or VIP does not exist. */
  notFound: 3,
  /** No answer: the server is down, unreachable, not a gRPC port, or slower than --timeout. */
  unreachable: 4,
} as const;

export const EXIT_CODES_HELP = `
Exit codes:
  0  success
  1  the server refused the call (the message names the gRPC status)
  2  bad usage or configuration
  3  not found (unknown instance; an application or VIP with no instances)
  4  no answer: server down or unreachable, not its gRPC port, or slower than --timeout`;

/** A failure with its exit code, reported as one line on stderr. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/**
 * One human line and an exit code for a failure. gRPC reports a dead server, a wrong port
 * and a timeout with the same few codes; the details tell them apart.
 */
export function explain(err: unknown, flags: { server: string; timeout: number }): CliError {
  if (err instanceof CliError) return err;
  if (!isServiceError(err)) return new CliError(err instanceof Error ? err.message : String(err), EXIT.failure);
  const details = (err.details || err.message).replace(/\s+/g, ' ').trim();
  switch (err.code) {
    case grpcStatus.UNAVAILABLE:
      if (/ECONNREFUSED/.test(details)) {
        return new CliError(`cannot reach a Roster node at ${flags.server} (connection refused): is it running? (--server, ROSTER_SERVER)`, EXIT.unreachable);
      }
      if (/Protocol error|HTTP status code|http1/i.test(details)) {
        return new CliError(`${flags.server} does not speak gRPC (an HTTP port?): give the node's gRPC port (default 8761), not its HTTP port (8762)`, EXIT.unreachable);
      }
      if (/ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT/.test(details)) {
        return new CliError(`cannot reach a Roster node at ${flags.server} (${details.match(/E[A-Z_]+/)?.[0]}): check the address (--server, ROSTER_SERVER)`, EXIT.unreachable);
      }
      return new CliError(`${flags.server} is unavailable: ${details}`, EXIT.unreachable);
    case grpcStatus.DEADLINE_EXCEEDED:
      return new CliError(`no answer from ${flags.server} within ${seconds(flags.timeout)} (--timeout)`, EXIT.unreachable);
    case grpcStatus.NOT_FOUND:
      return new CliError(`not found: ${details}`, EXIT.notFound);
    default:
      return new CliError(`${grpcStatus[err.code] ?? err.code}: ${details}`, EXIT.failure);
  }
}

export function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1).replace(/\.0$/, '')} s`;
}
