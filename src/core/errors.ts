/** The kinds of failure the core reports; the gRPC layer maps each to one status code. */
export type ErrorKind = 'invalid_argument' | 'not_found' | 'resource_exhausted' | 'unavailable' | 'unauthenticated' | 'failed_precondition';

/** A domain error. `field` names the offending input field for `invalid_argument`. */
export class RegistryError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}

/** Shorthand for an `invalid_argument` error naming `field`. */
export function invalid(field: string, problem: string): RegistryError {
  return new RegistryError('invalid_argument', `${field}: ${problem}`, field);
}

/** Shorthand for the `not_found` error of an unknown instance. */
export function unknownInstance(app: string, instanceId: string): RegistryError {
  return new RegistryError('not_found', `instance ${app}/${instanceId} is not registered`);
}
