import { randomUUID } from 'node:crypto';
import { BinaryReader } from '@bufbuild/protobuf/wire';

/** A request with a string field that is not valid UTF-8; `field` is its path, e.g. `instance.metadata["k"]`. */
export class InvalidUtf8Error extends Error {
  constructor(readonly field: string) {
    super(`${field}: is not valid UTF-8`);
    this.name = 'InvalidUtf8Error';
  }
}

const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Stands in for a string that was not UTF-8, so the walk after decoding can name its field; never valid input by chance. */
const MARK = `\uffff${randomUUID()}`;

/**
 * Decodes a request with `decode` (a ts-proto `decode`, which takes a reader as well as bytes),
 * refusing strings that are not valid UTF-8 instead of silently replacing them with U+FFFD as
 * protobuf decoders do. Valid input costs one fatal TextDecoder pass per non-ASCII string;
 * only a refused request is walked, to name the field.
 */
export function decodeStrictUtf8<T>(decode: (input: BinaryReader) => T, bytes: Uint8Array): T {
  let invalid = false;
  const reader = new BinaryReader(bytes, (utf8) => {
    try {
      return fatal.decode(utf8);
    } catch {
      invalid = true;
      return MARK;
    }
  });
  const message = decode(reader);
  if (invalid) throw new InvalidUtf8Error(markedField(message, '') ?? 'a string field');
  return message;
}

/**
 * The `map<string, string>` fields of roster.v1 (test/grpc/strict-utf8.test.ts checks this
 * against the protos): ts-proto decodes a map to a plain object, like a message.
 */
export const MAP_FIELDS: ReadonlySet<string> = new Set(['metadata', 'set']);

/** The path of the first string or map key that is {@link MARK}, with proto field names. */
function markedField(value: unknown, path: string, isMap = false): string | undefined {
  if (value === MARK) return path;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = markedField(value[i], `${path}[${i}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return undefined;
  for (const [key, child] of Object.entries(value)) {
    if (isMap && key === MARK) return `${path} (a key)`;
    const field = isMap ? '' : key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    const name = isMap ? `${path}[${JSON.stringify(key)}]` : path === '' ? field : `${path}.${field}`;
    const found = markedField(child, name, MAP_FIELDS.has(field));
    if (found !== undefined) return found;
  }
  return undefined;
}
