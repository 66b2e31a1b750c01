import { Metadata, status, type ServiceError } from '@grpc/grpc-js';

/** Codes that will not change by retrying the same call: the caller has to act. */
const PERMANENT = new Set<number>([
  status.INVALID_ARGUMENT,
  status.NOT_FOUND,
  status.ALREADY_EXISTS,
  status.PERMISSION_DENIED,
  status.UNAUTHENTICATED,
  status.UNIMPLEMENTED,
  status.FAILED_PRECONDITION,
  status.OUT_OF_RANGE,
]);

/** Whether `err` is a gRPC status error (what grpc-js hands to callbacks and stream 'error'). */
export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number' && 'details' in err;
}

/**
 * Whether retrying may help: any status error but the permanent ones (bad input, unknown
 * instance, auth, unimplemented). Non-gRPC errors are bugs and are not retried.
 */
export function isRetryable(err: unknown): boolean {
  return isServiceError(err) && !PERMANENT.has(err.code);
}

/** A client-side failure shaped like a server one, so callers handle a single error type. */
export function clientError(code: status, details: string): ServiceError {
  return Object.assign(new Error(`${code} ${status[code]}: ${details}`), {
    code,
    details,
    metadata: new Metadata(),
  });
}
