import { status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { RegistryError, type ErrorKind } from '../core/errors.js';

/** The status a handler answers with: what `callback(err)` and `call.emit('error')` accept. */
export interface RpcStatus {
  readonly code: status;
  readonly details: string;
}

/** The one table from domain error kinds to gRPC codes (etcd's `toGRPCErrorMap`). */
export const STATUS_BY_KIND: Readonly<Record<ErrorKind, status>> = {
  invalid_argument: status.INVALID_ARGUMENT,
  not_found: status.NOT_FOUND,
  resource_exhausted: status.RESOURCE_EXHAUSTED,
  unavailable: status.UNAVAILABLE,
  unauthenticated: status.UNAUTHENTICATED,
  failed_precondition: status.FAILED_PRECONDITION,
};

const INTERNAL: RpcStatus = { code: status.INTERNAL, details: 'internal error' };

/**
 * What a client sees for `err`. A {@link RegistryError} keeps its message, which names the
 * field for `invalid_argument`; anything else is logged with its cause and answered INTERNAL
 * with a generic message, so internals never leak.
 */
export function toRpcStatus(err: unknown, logger: Logger): RpcStatus {
  if (err instanceof RegistryError && Object.hasOwn(STATUS_BY_KIND, err.kind)) {
    const details = err.field !== undefined && !err.message.startsWith(err.field) ? `${err.field}: ${err.message}` : err.message;
    return { code: STATUS_BY_KIND[err.kind], details };
  }
  logger.error({ err }, 'internal error');
  return INTERNAL;
}
