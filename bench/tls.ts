/**
 * The cost of TLS: Register and stream renewals against a plain-text node and a TLS node in
 * the same run, with the same scenarios and budget as the throughput suite. The certificate
 * is made with the `openssl` CLI in a temp directory and removed afterwards.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { RosterClient } from '../src/client/index.js';
import { ServerProcess } from './harness.js';
import type { ClusterSuite, Measurement, Scenario, Suite } from './scenarios.js';

interface TlsSuiteOptions {
  /** The throughput suite, whose `register` and `heartbeat-stream` scenarios are run twice. */
  readonly throughput: () => Suite;
  readonly channelOptions: grpc.ChannelOptions;
  /** Instances the renewal scenario renews (populated first, as the throughput suite does). */
  readonly heartbeatPool: number;
}

const MODES = ['plain', 'tls'] as const;

export function tlsSuite(options: TlsSuiteOptions): ClusterSuite {
  return {
    name: 'tls',
    scenarios: [
      { id: 'register-plain', title: 'Register, 64 in flight, plain text', unit: 'registers/s' },
      { id: 'register-tls', title: 'Register, 64 in flight, TLS (same run)', unit: 'registers/s' },
      { id: 'renewals-plain', title: 'renewals over one Heartbeats stream, plain text', unit: 'renewals/s' },
      { id: 'renewals-tls', title: 'renewals over one Heartbeats stream, TLS (same run)', unit: 'renewals/s' },
    ],
    async run({ budget, serverFlags }) {
      const throughput = options.throughput();
      const scenario = (id: string): Scenario => {
        const found = throughput.scenarios.find((s) => s.id === id);
        if (!found) throw new Error(`throughput suite has no scenario ${id}`);
        return found;
      };
      const dir = mkdtempSync(join(tmpdir(), 'roster-bench-tls-'));
      const results = new Map<string, Measurement>();
      try {
        const files = certificate(dir);
        for (const mode of MODES) {
          const tls = mode === 'tls';
          const server = await ServerProcess.start({ ...throughput.serverFlags, ...(tls ? { tlsCertFile: files.cert, tlsKeyFile: files.key } : {}), ...serverFlags });
          const client = new RosterClient(server.address, {
            // The certificate names localhost too: TLS server names may not be IP addresses (RFC 6066).
            channelOptions: tls ? { ...options.channelOptions, 'grpc.ssl_target_name_override': 'localhost' } : options.channelOptions,
            timeoutMs: 30_000,
            ...(tls ? { credentials: grpc.credentials.createSsl(readFileSync(files.ca)) } : {}),
          });
          try {
            await server.populate(0, options.heartbeatPool, 'hb');
            const ctx = { server, client, budget, results };
            results.set(`register-${mode}`, await scenario('register').run(ctx));
            results.set(`renewals-${mode}`, await scenario('heartbeat-stream').run(ctx));
          } finally {
            client.close();
            await server.stop();
          }
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      return results;
    },
  };
}

/** A CA and a server certificate for 127.0.0.1 (EC P-256, one day). */
function certificate(dir: string): { cert: string; key: string; ca: string } {
  const path = (name: string): string => join(dir, name);
  const openssl = (args: string[]): void => void execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', path('ca.key'), '-out', path('ca.crt'), '-subj', '/CN=bench-ca', '-days', '1']);
  openssl(['req', ...ec, '-keyout', path('node.key'), '-out', path('node.csr'), '-subj', '/CN=bench-node']);
  writeFileSync(path('node.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(['x509', '-req', '-in', path('node.csr'), '-CA', path('ca.crt'), '-CAkey', path('ca.key'), '-set_serial', '1', '-out', path('node.crt'), '-days', '1', '-extfile', path('node.ext')]);
  return { cert: path('node.crt'), key: path('node.key'), ca: path('ca.crt') };
}
