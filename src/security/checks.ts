/**
 * Checks of values read from configuration (server and agent settings, the credentials file):
 * each returns the value, typed, or throws a {@link Refused} saying what the value must be; the
 * caller adds which setting it was and where it came from. Hand-written rather than a schema
 * library, which a node held in memory for as long as it ran (about 4 MiB of an idle node's RSS).
 */
export type Check<T> = (value: unknown) => T;

/** Why a value was refused, phrased to follow its name (`port=70000: must be …`). */
export class Refused extends Error {
  override readonly name = 'Refused';
}

export function integer(min: number, max: number): Check<number> {
  return (value) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw new Refused(`must be an integer from ${min} to ${max}`);
    return value;
  };
}

export const boolean: Check<boolean> = (value) => {
  if (typeof value !== 'boolean') throw new Refused('must be true or false');
  return value;
};

export interface TextRules {
  readonly min?: number;
  readonly max?: number;
  /** A pattern or test the string must pass, and what to say when it does not. */
  readonly format?: RegExp | ((text: string) => boolean);
  readonly says?: string;
}

export function text(rules: TextRules = {}): Check<string> {
  const { min = 0, max = Infinity, format, says } = rules;
  return (value) => {
    if (typeof value !== 'string') throw new Refused('must be a string');
    if (value.length < min) throw new Refused(min === 1 ? 'must not be empty' : `must be at least ${min} characters`);
    if (value.length > max) throw new Refused(`must be at most ${max} characters`);
    if (format !== undefined && !(typeof format === 'function' ? format(value) : format.test(value))) throw new Refused(says ?? 'is not in the expected format');
    return value;
  };
}

export function oneOf<const T extends string>(values: readonly T[]): Check<T> {
  return (value) => {
    if (!(values as readonly unknown[]).includes(value)) throw new Refused(`must be one of ${values.join(', ')}`);
    return value as T;
  };
}

/** The checked value, or why it was refused (anything else thrown is a bug and goes on up). */
export function verdict<T>(check: Check<T>, value: unknown): { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string } {
  try {
    return { ok: true, value: check(value) };
  } catch (err) {
    if (err instanceof Refused) return { ok: false, problem: err.message };
    throw err;
  }
}
