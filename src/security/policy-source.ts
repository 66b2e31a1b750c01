import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { AccessPolicy } from './access.js';
import { buildPolicy, parseCredentials, readCredentials, type PolicySources } from './credentials-file.js';

export interface PolicySourceOptions extends Omit<PolicySources, 'principals'> {
  /** The credentials file; undefined: no file (see {@link buildPolicy}). */
  readonly credentialsFile?: string;
  readonly logger: Logger;
}

/**
 * The node's current {@link AccessPolicy}, rebuilt when the credentials file changes (a
 * Kubernetes secret rotated). A file that no longer parses is logged (by path and problem,
 * never content) and the previous policy stays in force.
 */
export class PolicySource {
  readonly #options: PolicySourceOptions;
  readonly #log: Logger;
  #policy: AccessPolicy;
  #text: string | undefined;
  #timer: NodeJS.Timeout | undefined;

  /** Reads the file synchronously: a node with a broken file fails at start, naming it. */
  constructor(options: PolicySourceOptions) {
    this.#options = options;
    this.#log = options.logger.child({ component: 'credentials' });
    const file = options.credentialsFile !== undefined ? readCredentials(options.credentialsFile) : undefined;
    this.#text = file?.text;
    const principals = file?.principals;
    this.#policy = buildPolicy({ ...options, principals });
    if (principals) this.#log.info({ file: options.credentialsFile, principals: principals.map((p) => p.name) }, 'credentials loaded');
  }

  get policy(): AccessPolicy {
    return this.#policy;
  }

  /** Re-reads the file every `intervalMs` (timer unref'd). */
  watch(intervalMs: number): void {
    if (this.#options.credentialsFile === undefined || this.#timer) return;
    this.#timer = setInterval(() => void this.reload(), intervalMs);
    this.#timer.unref();
  }

  /** Reads the file now; true when a changed, valid file was applied. */
  async reload(): Promise<boolean> {
    const path = this.#options.credentialsFile;
    if (path === undefined) return false;
    try {
      const text = await readFile(path, 'utf8');
      if (text === this.#text) return false;
      const principals = parseCredentials(text, path);
      this.#text = text;
      this.#policy = buildPolicy({ ...this.#options, principals });
      this.#log.info({ file: path, principals: principals.map((p) => p.name) }, 'credentials reloaded');
      return true;
    } catch (err) {
      this.#log.warn({ file: path, problem: (err as Error).message }, 'credentials file changed but cannot be used; keeping the previous credentials');
      return false;
    }
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
