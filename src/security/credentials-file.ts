import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { AccessPolicy, ROLES, tokenDigest, type PrincipalEntry, type Role } from './access.js';

/** Tokens shorter than this are refused: a guessable token is no credential. */
export const MIN_TOKEN_LENGTH = 16;

const entrySchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/, 'must be 1..128 of [A-Za-z0-9._:@-]'),
    roles: z.array(z.enum(ROLES)).min(1, 'must list at least one role'),
    token: z.string().min(MIN_TOKEN_LENGTH, `must be at least ${MIN_TOKEN_LENGTH} characters`).max(1024).optional(),
    tokenSha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits').optional(),
    certificate: z.string().min(1).max(256).optional(),
    apps: z.array(z.string().min(1).max(128)).min(1, 'must list at least one app when present').optional(),
  })
  .strict()
  .refine((e) => e.token !== undefined || e.tokenSha256 !== undefined || e.certificate !== undefined, {
    message: 'needs a token, a tokenSha256 or a certificate name',
  })
  .refine((e) => e.token === undefined || e.tokenSha256 === undefined, { message: 'give token or tokenSha256, not both' });

const fileSchema = z.object({ principals: z.array(entrySchema).min(1, 'must list at least one principal') }).strict();

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
  const parsed = fileSchema.safeParse(data);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`);
    throw new CredentialsError(`credentials file ${path}: ${problems.join('; ')}`);
  }
  const names = new Set<string>();
  const digests = new Set<string>();
  return parsed.data.principals.map((e, index) => {
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
  const cluster: PrincipalEntry[] =
    sources.clusterToken !== undefined ? [{ name: 'cluster', roles: new Set<Role>(['replicate']), tokenSha256: tokenDigest(sources.clusterToken) }] : [];
  if (sources.principals !== undefined) {
    return new AccessPolicy({ principals: [...sources.principals, ...cluster], enforced: ALL_ROLES, certificateRoles: new Set() });
  }
  if (sources.mtls) return new AccessPolicy({ principals: cluster, enforced: ALL_ROLES, certificateRoles: ALL_ROLES });
  if (cluster.length > 0) return new AccessPolicy({ principals: cluster, enforced: new Set<Role>(['replicate']), certificateRoles: new Set() });
  return AccessPolicy.open();
}
