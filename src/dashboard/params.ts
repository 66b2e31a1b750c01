import type { IncomingMessage } from 'node:http';
import { STATUSES, type InstanceStatus } from '../core/types.js';

/** A request the API refuses: answered 400 (or `status`) with the parameter named. */
export class BadRequest extends Error {
  constructor(
    readonly parameter: string,
    problem: string,
    readonly status = 400,
  ) {
    super(`${parameter}: ${problem}`);
  }
}

/**
 * The query string of `url`, refusing names not in `allowed` and repeated names, so a typo
 * (`?limt=5`) is an error rather than a silently ignored filter.
 */
export function queryOf(url: string | undefined, allowed: readonly string[]): Map<string, string> {
  const params = new URL(url ?? '/', 'http://localhost').searchParams;
  const out = new Map<string, string>();
  for (const [name, value] of params) {
    if (!allowed.includes(name)) throw new BadRequest(name, `unknown parameter (expected one of ${allowed.join(', ')})`);
    if (out.has(name)) throw new BadRequest(name, 'given more than once');
    out.set(name, value);
  }
  return out;
}

export function intParam(query: Map<string, string>, name: string, min: number, max: number, fallback: number): number {
  const raw = query.get(name);
  if (raw === undefined) return fallback;
  if (!/^\d{1,9}$/.test(raw)) throw new BadRequest(name, `must be an integer ${min}..${max}`);
  const n = Number(raw);
  if (n < min || n > max) throw new BadRequest(name, `must be an integer ${min}..${max}`);
  return n;
}

/** A free-text filter: printable, at most `max` characters; empty means no filter. */
export function textParam(query: Map<string, string>, name: string, max: number): string {
  const raw = (query.get(name) ?? '').trim();
  if (raw.length > max) throw new BadRequest(name, `longer than ${max} characters`);
  if (/[\x00-\x1f\x7f]/.test(raw)) throw new BadRequest(name, 'must not contain control characters');
  return raw;
}

export function statusValue(raw: unknown, name: string, allowed: readonly InstanceStatus[] = STATUSES): InstanceStatus {
  if (typeof raw !== 'string' || !(allowed as readonly string[]).includes(raw)) {
    throw new BadRequest(name, `must be one of ${allowed.join(', ')}`);
  }
  return raw as InstanceStatus;
}

/** Largest JSON body an action takes: a status name fits many times over. */
const MAX_BODY_BYTES = 4096;

/** Reads a small JSON object body; 415 unless it is declared as JSON, 413 beyond the bound. */
export async function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new BadRequest('content-type', 'must be application/json', 415);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BadRequest('body', `larger than ${MAX_BODY_BYTES} bytes`, 413);
    chunks.push(chunk);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new BadRequest('body', 'is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new BadRequest('body', 'must be a JSON object');
  return parsed as Record<string, unknown>;
}
