import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { AccessPolicy } from './access.js';
import type { PrincipalEntry } from './access.js';
import { buildPolicy, parseCredentials, readCredentials, type PolicySources } from './credentials-file.js';

export interface PolicySourceOptions extends Omit<PolicySources, 'principals'> {
  /** The credentials file; undefined: no file (see {@link buildPolicy}). */
  readonly credentialsFile?: string;
  /** A file holding the cluster token (instead of `clusterToken`), re-read like the credentials file. */
  readonly clusterTokenFile?: string;
  readonly logger: Logger;
}

/** A secret file's problem; names the file, never its content. */
export class SecretFileError extends Error {
  override readonly name = 'SecretFileError';
}

/**
 * The node's current {@link AccessPolicy} and cluster token, rebuilt when the credentials
 * file or the cluster token file changes (a Kubernetes secret rotated). A file that no longer
 * parses is logged (by path and problem, never content) and the previous policy stays.
 */
export class PolicySource {
  readonly #options: PolicySourceOptions;
  readonly #log: Logger;
  #policy: AccessPolicy;
  #text: string | undefined;
  #clusterToken: string | undefined;
  #principals: PrincipalEntry[] | undefined;
  #timer: NodeJS.Timeout | undefined;

  /** Reads the files synchronously: a node with a broken file fails at start, naming it. */
  constructor(options: PolicySourceOptions) {
    this.#options = options;
    this.#log = options.logger.child({ component: 'credentials' });
    this.#clusterToken = options.clusterTokenFile !== undefined ? tokenOf(readSecret(options.clusterTokenFile), options.clusterTokenFile) : options.clusterToken;
    const file = options.credentialsFile !== undefined ? readCredentials(options.credentialsFile) : undefined;
    this.#text = file?.text;
    this.#policy = this.#build(file?.principals);
    if (file) this.#log.info({ file: options.credentialsFile, principals: file.principals.map((p) => p.name) }, 'credentials loaded');
  }

  get policy(): AccessPolicy {
    return this.#policy;
  }

  /** The token this node presents to its peers (the latest read). */
  get clusterToken(): string | undefined {
    return this.#clusterToken;
  }

  /** Re-reads the files every `intervalMs` (timer unref'd). */
  watch(intervalMs: number): void {
    if ((this.#options.credentialsFile === undefined && this.#options.clusterTokenFile === undefined) || this.#timer) return;
    this.#timer = setInterval(() => void this.reload(), intervalMs);
    this.#timer.unref();
  }

  /** Reads the files now; true when a changed, valid file was applied. */
  async reload(): Promise<boolean> {
    const { credentialsFile, clusterTokenFile } = this.#options;
    let principals: PrincipalEntry[] | undefined;
    let text = this.#text;
    let token = this.#clusterToken;
    const path = credentialsFile ?? clusterTokenFile;
    try {
      if (clusterTokenFile !== undefined) token = tokenOf(await readFile(clusterTokenFile, 'utf8'), clusterTokenFile);
      if (credentialsFile !== undefined) {
        text = await readFile(credentialsFile, 'utf8');
        principals = text === this.#text ? this.#principals : parseCredentials(text, credentialsFile);
      }
    } catch (err) {
      this.#log.warn({ file: path, problem: (err as Error).message }, 'a secret file changed but cannot be used; keeping the previous credentials');
      return false;
    }
    if (text === this.#text && token === this.#clusterToken) return false;
    this.#text = text;
    this.#clusterToken = token;
    this.#policy = this.#build(principals);
    this.#log.info({ file: path, ...(principals ? { principals: principals.map((p) => p.name) } : {}) }, 'credentials reloaded');
    return true;
  }

  #build(principals: PrincipalEntry[] | undefined): AccessPolicy {
    this.#principals = principals;
    return buildPolicy({ mtls: this.#options.mtls, principals, ...(this.#clusterToken !== undefined ? { clusterToken: this.#clusterToken } : {}) });
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

function readSecret(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new SecretFileError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The token in a file, trimmed (secrets often end in a newline); an empty file is an error. */
function tokenOf(text: string, path: string): string {
  const token = text.trim();
  if (token === '') throw new SecretFileError(`${path} is empty`);
  return token;
}
