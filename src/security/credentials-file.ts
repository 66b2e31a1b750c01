import { readFileSync } from 'node:fs';
import * as check from './checks.js';
import { AccessPolicy, ROLES, tokenDigest, type PrincipalEntry, type Role } from './access.js';

/** Tokens shorter than this are refused: a guessable token is no credential. */
export const MIN_TOKEN_LENGTH = 16;

/** One principal as the file gives it, once its fields are checked. */
interface FileEntry {
  readonly name: string;
  readonly roles: readonly Role[];
  readonly token: string | undefined;
  readonly tokenSha256: string | undefined;
  readonly certificate: string | undefined;
  readonly apps: readonly string[] | undefined;
}

const FILE_KEYS: ReadonlySet<string> = new Set(['principals']);
const ENTRY_KEYS: ReadonlySet<string> = new Set(['name', 'roles', 'token', 'tokenSha256', 'certificate', 'apps']);
const NAME = check.text({ format: /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/, says: 'must be 1..128 of [A-Za-z0-9._:@-]' });
const TOKEN = check.text({ min: MIN_TOKEN_LENGTH, max: 1024 });
const TOKEN_SHA256 = check.text({ format: /^[0-9a-fA-F]{64}$/, says: 'must be 64 hex digits' });
const CERTIFICATE = check.text({ min: 1, max: 256 });
const ROLE = check.oneOf(ROLES);
const APP = check.text({ min: 1, max: 128 });
const ANY: check.Check<unknown> = (value) => value;

/** Every problem of a file, each after the path of its value (`principals.0.token: …`). */
class Problems {
  readonly found: string[] = [];

  add(path: string, problem: string): undefined {
    this.found.push(`${path}: ${problem}`);
    return undefined;
  }

  /** The checked value; undefined when it is missing or refused (a problem either way). */
  value<T>(path: string, valid: check.Check<T>, value: unknown): T | undefined {
    if (value === undefined) return this.add(path, 'is required');
    const checked = check.verdict(valid, value);
    return checked.ok ? checked.value : this.add(path, checked.problem);
  }

  /** A non-empty array, every element checked; undefined when anything in it was refused. */
  list<T>(path: string, valid: check.Check<T>, value: unknown, empty: string): T[] | undefined {
    if (!Array.isArray(value)) return this.add(path, value === undefined ? 'is required' : 'must be an array');
    if (value.length === 0) return this.add(path, empty);
    const items = value.map((item: unknown, i) => this.value(`${path}.${i}`, valid, item));
    return items.includes(undefined) ? undefined : (items as T[]);
  }

  /** A JSON object; a key outside `known` is a problem (a typo must not pass silently). */
  object(path: string, value: unknown, known: ReadonlySet<string>): Record<string, unknown> | undefined {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return this.add(path, 'must be a JSON object');
    for (const key of Object.keys(value)) if (!known.has(key)) this.add(path, `unknown key "${key}"`);
    return value as Record<string, unknown>;
  }
}

function checkEntry(value: unknown, path: string, problems: Problems): FileEntry | undefined {
  const entry = problems.object(path, value, ENTRY_KEYS);
  if (entry === undefined) return undefined;
  const before = problems.found.length;
  const optional = <T>(key: string, valid: check.Check<T>): T | undefined => (entry[key] === undefined ? undefined : problems.value(`${path}.${key}`, valid, entry[key]));
  const name = problems.value(`${path}.name`, NAME, entry.name);
  const roles = problems.list(`${path}.roles`, ROLE, entry.roles, 'must list at least one role');
  const token = optional('token', TOKEN);
  const tokenSha256 = optional('tokenSha256', TOKEN_SHA256);
  const certificate = optional('certificate', CERTIFICATE);
  const apps = entry.apps === undefined ? undefined : problems.list(`${path}.apps`, APP, entry.apps, 'must list at least one app when present');
  if (entry.token === undefined && entry.tokenSha256 === undefined && entry.certificate === undefined) problems.add(path, 'needs a token, a tokenSha256 or a certificate name');
  if (entry.token !== undefined && entry.tokenSha256 !== undefined) problems.add(path, 'give token or tokenSha256, not both');
  if (problems.found.length > before || name === undefined || roles === undefined) return undefined;
  return { name, roles, token, tokenSha256, certificate, apps };
}

/** The principals of a parsed file, or every problem found. Problems say what a value must be, never what it is. */
function checkFile(data: unknown): { principals: FileEntry[]; problems: readonly string[] } {
  const problems = new Problems();
  const file = problems.object('(file)', data, FILE_KEYS);
  const entries = file === undefined ? [] : (problems.list('principals', ANY, file.principals, 'must list at least one principal') ?? []);
  const principals = entries.flatMap((entry, i) => checkEntry(entry, `principals.${i}`, problems) ?? []);
  return { principals, problems: problems.found };
}

/** A credentials file problem; the message names the file and the entry, never a secret. */
export class CredentialsError extends Error {
  override readonly name = 'CredentialsError';
}

/**
 * Parses a credentials file (JSON: `{"principals": [{name, roles, token | tokenSha256 |
 * certificate, apps?}]}`). Messages name the entry and field but never echo a value, since
 * the value may be a token.
 */
export function parseCredentials(text: string, path: string): PrincipalEntry[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new CredentialsError(`credentials file ${path} is not valid JSON`);
  }
  const { principals, problems } = checkFile(data);
  if (problems.length > 0) throw new CredentialsError(`credentials file ${path}: ${problems.join('; ')}`);
  const names = new Set<string>();
  const digests = new Set<string>();
  return principals.map((e, index) => {
    if (names.has(e.name)) throw new CredentialsError(`credentials file ${path}: principals.${index}.name: "${e.name}" appears twice`);
    names.add(e.name);
    const digest = e.token !== undefined ? tokenDigest(e.token) : e.tokenSha256 !== undefined ? Buffer.from(e.tokenSha256, 'hex') : undefined;
    if (digest !== undefined) {
      const key = digest.toString('hex');
      if (digests.has(key)) throw new CredentialsError(`credentials file ${path}: principals.${index} (${e.name}): its token is also another principal's`);
      digests.add(key);
    }
    return {
      name: e.name,
      roles: new Set<Role>(e.roles),
      ...(e.apps ? { apps: new Set(e.apps.map((a) => a.toLowerCase())) } : {}),
      ...(digest ? { tokenSha256: digest } : {}),
      ...(e.certificate !== undefined ? { certificate: e.certificate } : {}),
    };
  });
}

/** Reads and parses a credentials file; returns its text too, so a reload can tell whether it changed. */
export function readCredentials(path: string): { text: string; principals: PrincipalEntry[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CredentialsError(`cannot read credentials file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return { text, principals: parseCredentials(text, path) };
}

export interface PolicySources {
  /** Principals from the credentials file; undefined when none is configured. */
  readonly principals?: readonly PrincipalEntry[];
  /** The cluster token: a principal `cluster` with the `replicate` role. */
  readonly clusterToken?: string;
  /** True when the gRPC port requires verified client certificates. */
  readonly mtls: boolean;
}

const ALL_ROLES: ReadonlySet<Role> = new Set(ROLES);

/**
 * The node's policy from its configuration:
 * - a credentials file: every role is enforced; callers must match an entry (or the cluster token);
 * - no file but mTLS: every role is enforced and any certificate the CA verified holds every role;
 * - no file, no mTLS, a cluster token: only replication is enforced (as before roles existed);
 * - nothing: an open node.
 */
export function buildPolicy(sources: PolicySources): AccessPolicy {
  const cluster: PrincipalEntry[] = sources.clusterToken !== undefined ? [{ name: 'cluster', roles: new Set<Role>(['replicate']), tokenSha256: tokenDigest(sources.clusterToken) }] : [];
  if (sources.principals !== undefined) {
    return new AccessPolicy({ principals: [...sources.principals, ...cluster], enforced: ALL_ROLES, certificateRoles: new Set() });
  }
  if (sources.mtls) return new AccessPolicy({ principals: cluster, enforced: ALL_ROLES, certificateRoles: ALL_ROLES });
  if (cluster.length > 0) return new AccessPolicy({ principals: cluster, enforced: new Set<Role>(['replicate']), certificateRoles: new Set() });
  return AccessPolicy.open();
}
