import { execFileSync } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Throw-away PKI for tests, made with Debian's `openssl` CLI in a temp directory: nothing
 * private is checked in. EC P-256 keys, valid one day. Leaf certificates name 127.0.0.1
 * and localhost (server use) and serve as client certificates too.
 */
export class TestPki {
  readonly dir = mkdtempSync(join(tmpdir(), 'roster-pki-'));
  #serial = 1;

  /** A self-signed CA; returns the paths of its certificate and key. */
  ca(name: string): { cert: string; key: string } {
    const cert = join(this.dir, `${name}.crt`);
    const key = join(this.dir, `${name}.key`);
    openssl([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-subj',
      `/CN=${name}`,
      '-days',
      '1',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    return { cert, key };
  }

  /**
   * A leaf certificate for `cn` signed by `ca`, written to `<file>.crt` / `<file>.key`
   * (default: the CN); writing to the same file again replaces it (a rotation).
   */
  leaf(ca: { cert: string; key: string }, cn: string, file = cn): { cert: string; key: string; ca: string } {
    const cert = join(this.dir, `${file}.crt`);
    const key = join(this.dir, `${file}.key`);
    const csr = join(this.dir, `${file}.csr`);
    const ext = join(this.dir, `${file}.ext`);
    writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
    // Each file is renamed into place, so a reader sees a whole old or a whole new file.
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${key}.new`, '-out', csr, '-subj', `/CN=${cn}`]);
    openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', String(this.#serial++), '-out', `${cert}.new`, '-days', '1', '-extfile', ext]);
    renameSync(`${key}.new`, key);
    renameSync(`${cert}.new`, cert);
    return { cert, key, ca: ca.cert };
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
}
