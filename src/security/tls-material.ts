import { createHash, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';

/** Where a node's TLS material lives (PEM files; a Kubernetes secret mounts them). */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** CA bundle that verifies client certificates (mTLS) and peers' server certificates. */
  readonly caFile?: string;
}

/** The PEM contents of {@link TlsFiles}. */
export interface TlsPem {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca?: Buffer;
}

/** A failure to load TLS material; names the file, never prints key material. */
export class TlsError extends Error {
  override readonly name = 'TlsError';
}

type Listener = (pem: TlsPem) => void;
/** grpc-js' certificate provider listener shapes (structural, so this module needs no gRPC import). */
type IdentityListener = (update: { certificate: Buffer; privateKey: Buffer } | null) => void;
type CaListener = (update: { caCertificate: Buffer } | null) => void;

/**
 * A node's certificate, key and CA, re-read when the files change. A change takes effect for
 * new handshakes only, so open connections and their streams carry on. A broken update (key
 * not matching the certificate, unreadable file, half-written secret) is logged and ignored:
 * the last good material stays. Also a grpc-js `CertificateProvider`, so gRPC servers and
 * channels follow the same reloads.
 */
export class TlsMaterial {
  readonly files: TlsFiles;
  readonly #log: Logger;
  readonly #listeners = new Set<Listener>();
  readonly #identityListeners = new Set<IdentityListener>();
  readonly #caListeners = new Set<CaListener>();
  #pem: TlsPem;
  #digest: string;
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<boolean> | undefined;

  /** Loads synchronously, so a node with bad material fails at start with the file named. */
  constructor(files: TlsFiles, logger: Logger) {
    this.files = files;
    this.#log = logger.child({ component: 'tls' });
    const read = (path: string): Buffer => {
      try {
        return readFileSync(path);
      } catch (err) {
        throw new TlsError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    };
    const pem = { cert: read(files.certFile), key: read(files.keyFile), ...(files.caFile ? { ca: read(files.caFile) } : {}) };
    validate(pem, files);
    this.#pem = pem;
    this.#digest = digestOf(pem);
    this.#log.info(describe(pem), 'tls material loaded');
  }

  get pem(): TlsPem {
    return this.#pem;
  }

  /** True when a CA is configured (peers and, with client auth, clients are verified against it). */
  get hasCa(): boolean {
    return this.#pem.ca !== undefined;
  }

  /** Calls `listener` with every new material (not the current one). Returns the unsubscribe. */
  onChange(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Re-reads the files every `intervalMs` (timer unref'd); Kubernetes swaps a secret's files atomically. */
  watch(intervalMs: number): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.reload(), intervalMs);
    this.#timer.unref();
  }

  /** Reads the files now; true when new, valid material was applied. Concurrent calls share one read. */
  reload(): Promise<boolean> {
    return (this.#checking ??= this.#reload().finally(() => (this.#checking = undefined)));
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#listeners.clear();
    this.#identityListeners.clear();
    this.#caListeners.clear();
  }

  async #reload(): Promise<boolean> {
    let pem: TlsPem;
    try {
      const [cert, key, ca] = await Promise.all([readFile(this.files.certFile), readFile(this.files.keyFile), this.files.caFile ? readFile(this.files.caFile) : Promise.resolve(undefined)]);
      pem = { cert, key, ...(ca ? { ca } : {}) };
      if (digestOf(pem) === this.#digest) return false;
      validate(pem, this.files);
    } catch (err) {
      this.#log.warn({ err: { message: (err as Error).message } }, 'tls material changed but cannot be used; keeping the previous one');
      return false;
    }
    this.#pem = pem;
    this.#digest = digestOf(pem);
    this.#log.info(describe(pem), 'tls material reloaded');
    for (const listener of this.#listeners) listener(pem);
    for (const listener of this.#identityListeners) listener({ certificate: pem.cert, privateKey: pem.key });
    if (pem.ca) for (const listener of this.#caListeners) listener({ caCertificate: pem.ca });
    return true;
  }

  // grpc-js CertificateProvider. The first update is delivered on a microtask: grpc-js adds its
  // own watcher only after registering with the provider, and a synchronous update would be lost.

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.add(listener);
    queueMicrotask(() => this.#identityListeners.has(listener) && listener({ certificate: this.#pem.cert, privateKey: this.#pem.key }));
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.delete(listener);
  }

  addCaCertificateListener(listener: CaListener): void {
    this.#caListeners.add(listener);
    queueMicrotask(() => this.#caListeners.has(listener) && listener(this.#pem.ca ? { caCertificate: this.#pem.ca } : null));
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.#caListeners.delete(listener);
  }
}

function validate(pem: TlsPem, files: TlsFiles): void {
  try {
    // Throws when the key does not match the certificate or a PEM does not parse.
    createSecureContext({ cert: pem.cert, key: pem.key, ...(pem.ca ? { ca: pem.ca } : {}) });
    new X509Certificate(pem.cert);
  } catch (err) {
    throw new TlsError(`tls material ${files.certFile} / ${files.keyFile}${files.caFile ? ` / ${files.caFile}` : ''} is not usable: ${(err as Error).message}`);
  }
}

function digestOf(pem: TlsPem): string {
  const hash = createHash('sha256').update(pem.cert).update('\0').update(pem.key).update('\0');
  if (pem.ca) hash.update(pem.ca);
  return hash.digest('hex');
}

/** What may be logged about material: the certificate's public facts, never the key. */
function describe(pem: TlsPem): Record<string, unknown> {
  const cert = new X509Certificate(pem.cert);
  return { subject: cert.subject.replace(/\n/g, ', '), fingerprint256: cert.fingerprint256, validTo: cert.validTo, ca: pem.ca !== undefined };
}

/** The names a verified certificate answers to: its subject CN and its DNS and URI alternative names. */
export function certificateNames(subjectCn: string | undefined, subjectAltName: string | undefined): string[] {
  const names: string[] = [];
  if (subjectCn) names.push(subjectCn);
  for (const part of (subjectAltName ?? '').split(',')) {
    const match = /^\s*(DNS|URI):(.+)$/.exec(part);
    if (match) names.push(match[2]!.trim());
  }
  return names;
}
